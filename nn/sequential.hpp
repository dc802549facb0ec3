// Sequential: applies its submodules in order; they are named "0", "1", ...
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <tapegrad/nn/module.hpp>

namespace tapegrad::nn {

template <class T>
class Sequential : public BasicModule<T> {
public:
    Sequential() : BasicModule<T>("Sequential") {}
    explicit Sequential(std::vector<std::shared_ptr<BasicModule<T>>> layers);

    void push_back(std::shared_ptr<BasicModule<T>> layer);
    // Builds a layer in place: seq.emplace<Linear<float>>(2, 3).
    template <class M, class... Args>
    std::shared_ptr<M> emplace(Args&&... args) {
        auto m = std::make_shared<M>(std::forward<Args>(args)...);
        push_back(m);
        return m;
    }

    BasicTensor<T> forward(const BasicTensor<T>& x) override;
    std::size_t size() const { return layers_.size(); }
    BasicModule<T>& operator[](std::size_t i) const { return *layers_.at(i); }

private:
    std::vector<std::shared_ptr<BasicModule<T>>> layers_;
};

extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace tapegrad::nn

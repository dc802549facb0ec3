// Dropout (inverted): in training each element is zeroed with probability p
// and the survivors are scaled by 1/(1-p), so the expected output equals the
// input and evaluation needs no rescaling: in eval mode it is the identity.
#pragma once

#include <cstdint>

#include <tapegrad/nn/module.hpp>

namespace tapegrad::nn {

template <class T>
class Dropout : public BasicModule<T> {
public:
    // p in [0, 1]; the masks come from a generator seeded with `seed`.
    explicit Dropout(T p = T(0.5), std::uint64_t seed = 0);
    BasicTensor<T> forward(const BasicTensor<T>& x) override;
    Generator& generator() { return gen_; }
    T p() const { return p_; }

protected:
    std::string extra_repr() const override;

private:
    T p_;
    Generator gen_;
};

extern template class Dropout<float>;
extern template class Dropout<double>;

}  // namespace tapegrad::nn

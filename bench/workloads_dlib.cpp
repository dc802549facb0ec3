// The MLP workloads in dlib's DNN module (Debian libdlib-dev): hand-derived
// layers (fc, relu) and loss (loss_multiclass_log) with no graph, the peer
// for the per-op cost of a tape. Same weights, batch and labels as the
// other engines, so the losses agree (tapegrad_bench_memory checks).
//
// dlib's fc keeps [in, out] weights followed by one bias row, the layout of
// ours plus the bias. Its sgd solver with weight decay 0 and momentum 0 is
// plain SGD (dlib's bias weight-decay multiplier is then irrelevant).
#include <dlib/dnn.h>
#include <dlib/revision.h>

#include "workloads.hpp"

namespace bench {

namespace {

template <unsigned long H1, unsigned long H2, unsigned long C>
using MlpNet = dlib::loss_multiclass_log<dlib::fc<C, dlib::relu<dlib::fc<H2, dlib::relu<dlib::fc<H1,
               dlib::input<dlib::matrix<float>>>>>>>>;

template <class Net>
class DlibTrainer final : public Trainer {
public:
    explicit DlibTrainer(const MlpSpec& spec) : solvers_(Net::num_computational_layers, dlib::sgd(0, 0)) {
        const std::size_t in = spec.sizes.front();
        auto x = mlp_inputs(spec);
        std::vector<dlib::matrix<float>> samples(spec.batch, dlib::matrix<float>(1, long(in)));
        for (std::size_t b = 0; b < spec.batch; ++b)
            for (std::size_t i = 0; i < in; ++i) samples[b](0, long(i)) = x[b * in + i];
        net_.to_tensor(samples.begin(), samples.end(), x_);  // once, like the other engines' batch
        for (auto label : mlp_labels(spec)) labels_.push_back(static_cast<unsigned long>(label));

        net_.forward(x_);  // sizes the parameters, which are then overwritten
        std::vector<dlib::tensor*> params;  // visited from the output layer down
        dlib::visit_layer_parameters(net_, [&](std::size_t, dlib::tensor& t) {
            if (t.size() > 0) params.push_back(&t);
        });
        if (params.size() != spec.layers()) throw std::runtime_error("dlib: unexpected layer count");
        for (std::size_t l = 0; l < spec.layers(); ++l) {
            dlib::tensor& t = *params[spec.layers() - 1 - l];
            const std::size_t n_in = spec.sizes[l], n_out = spec.sizes[l + 1];
            if (t.size() != (n_in + 1) * n_out) throw std::runtime_error("dlib: unexpected fc parameter size");
            auto w = mlp_weight(spec, l);
            float* p = t.host();
            std::copy(w.begin(), w.end(), p);
            std::fill(p + n_in * n_out, p + (n_in + 1) * n_out, 0.0f);
        }
    }

    void forward() override { loss_ = float(net_.compute_loss(x_, labels_.begin())); }
    void backward() override { net_.back_propagate_error(x_); }
    void update() override { net_.update_parameters(solvers_, kLearningRate); }
    float loss() const override { return loss_; }

private:
    Net net_;
    std::vector<dlib::sgd> solvers_;
    dlib::resizable_tensor x_;
    std::vector<unsigned long> labels_;
    float loss_ = 0;
};

}  // namespace

std::unique_ptr<Trainer> make_dlib_trainer(const MlpSpec& spec) {
    if (spec.sizes == std::vector<std::size_t>{2, 16, 16, 2}) return std::make_unique<DlibTrainer<MlpNet<16, 16, 2>>>(spec);
    if (spec.sizes == std::vector<std::size_t>{784, 256, 256, 10})
        return std::make_unique<DlibTrainer<MlpNet<256, 256, 10>>>(spec);
    if (spec.sizes == std::vector<std::size_t>{1024, 1024, 1024, 10})
        return std::make_unique<DlibTrainer<MlpNet<1024, 1024, 10>>>(spec);
    return nullptr;
}

std::string dlib_version() {
    return std::to_string(DLIB_MAJOR_VERSION) + "." + std::to_string(DLIB_MINOR_VERSION);
}

}  // namespace bench

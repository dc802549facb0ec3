// Mixture of experts: a router sends each input to its top-2 of N small
// expert MLPs; the two outputs are mixed with gates renormalised by a
// softmax over the two selected router logits. Trained end to end.
//
//   build/examples/mixture_of_experts           # ~4 s; pictures in out/mixture_of_experts/
//   build/examples/mixture_of_experts --quick   # the smoke test: fewer points and steps
//
// The task lets experts specialise: 2-D inputs come from four clusters, and
// each cluster has its own labelling rule (quadrants, a disc, stripes, a
// wave). One small MLP has to fit all four rules with its few units; in
// the mixture, each expert of the same size can take one or two clusters.
//
// Only the two chosen experts run on an input (sparse dispatch): the rows
// routed to an expert are gathered, run through it, and scattered back.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include <tapegrad/nn/nn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "common/plot.hpp"
#include "common/program.hpp"
#include "common/training_step.hpp"

using namespace tapegrad;

namespace {

struct Options {
    std::uint64_t seed = 0;
    std::string out_dir = "out/mixture_of_experts";
    bool quick = false;
    bool eager = false;  // build the graph every step instead of replaying a compiled step
    std::size_t experts = 4;
    std::size_t hidden = 8;       // hidden units of each expert (and of the single-MLP baseline)
    std::size_t points = 400;     // per cluster, training (the test set has as many)
    int steps = 3000;             // full-batch Adam steps
    double balance = 0.01;        // weight of the load-balancing loss
};

const double kCentres[4][2] = {{-1.5, 1.5}, {1.5, 1.5}, {-1.5, -1.5}, {1.5, -1.5}};

// Cluster c's labelling rule, in coordinates (u, v) relative to its centre.
int rule(int c, double u, double v) {
    switch (c) {
        case 0: return u * v > 0;                     // opposite quadrants (XOR)
        case 1: return u * u + v * v < 0.45;          // a disc
        case 2: return std::sin(4 * (u - v)) > 0;     // diagonal stripes
        default: return v > 0.5 * std::sin(4 * u);    // a wave
    }
}

struct Data {
    Tensor x;
    Index labels, cluster;
};

Data make_data(std::size_t per_cluster, Generator& gen) {
    std::normal_distribution<double> offset(0.0, 0.55);
    std::vector<float> xy;
    Data d;
    for (int c = 0; c < 4; ++c)
        for (std::size_t i = 0; i < per_cluster; ++i) {
            double u = offset(gen.engine()), v = offset(gen.engine());
            xy.push_back(float(kCentres[c][0] + u));
            xy.push_back(float(kCentres[c][1] + v));
            d.labels.push_back(rule(c, u, v));
            d.cluster.push_back(c);
        }
    d.x = Tensor::from_data(xy.data(), {xy.size() / 2, 2});
    return d;
}

class MixtureOfExperts : public nn::Module {
public:
    MixtureOfExperts(std::size_t n, std::size_t hidden, Generator& gen) : nn::Module("MixtureOfExperts") {
        router_ = register_module("router", std::make_shared<nn::Linear<float>>(2, n, true, gen));
        for (std::size_t e = 0; e < n; ++e)
            experts_.push_back(register_module(
                "expert" + std::to_string(e),
                std::make_shared<nn::MLP<float>>(std::vector<std::size_t>{2, hidden, 2}, "tanh", nn::Head::identity, gen)));
    }

    Tensor forward(const Tensor& x) override {
        const std::size_t batch = x.shape()[0], n = experts_.size();
        router_logits_ = (*router_)(x);  // [batch, n]
        // The top-2 experts of each row. Choosing is not differentiable; the
        // gates below are, so the router learns through them.
        Index top(2 * batch);
        const auto& l = router_logits_.value();
        for (std::size_t i = 0; i < batch; ++i) {
            std::size_t a = 0, b = 1;
            if (l(i, b) > l(i, a)) std::swap(a, b);
            for (std::size_t e = 2; e < n; ++e) {
                if (l(i, e) > l(i, a)) b = a, a = e;
                else if (l(i, e) > l(i, b)) b = e;
            }
            top[2 * i] = std::int64_t(a);
            top[2 * i + 1] = std::int64_t(b);
        }
        top_ = top;
        auto gates = nn::softmax(gather(router_logits_, 1, top, {batch, 2}), 1);  // [batch, 2], rows sum to 1

        // Dispatch: each expert sees only its rows. `slot[2i + k]` remembers
        // where row i's k-th choice lands in the concatenated outputs.
        std::vector<Tensor> outputs;
        Index slot(2 * batch);
        std::int64_t offset = 0;
        for (std::size_t e = 0; e < n; ++e) {
            Index rows;
            for (std::size_t j = 0; j < 2 * batch; ++j)
                if (top[j] == std::int64_t(e)) {
                    slot[j] = offset + std::int64_t(rows.size());
                    rows.push_back(std::int64_t(j / 2));
                }
            if (rows.empty()) continue;
            outputs.push_back((*experts_[e])(index_select(x, 0, rows)));
            offset += std::int64_t(rows.size());
        }
        auto all = concat(outputs, 0);  // [2 batch, classes]
        Index first(batch), second(batch);
        for (std::size_t i = 0; i < batch; ++i) first[i] = slot[2 * i], second[i] = slot[2 * i + 1];
        return index_select(all, 0, first) * slice(gates, 1, 0, 1) +
               index_select(all, 0, second) * slice(gates, 1, 1, 2);
    }

    // Switch-Transformer-style balancing loss: n * sum_e f_e P_e, with f_e the
    // share of top-1 choices (a constant) and P_e the mean router
    // probability. It is 1 when the load is even and grows as the router
    // favours a few experts, which would otherwise starve the rest.
    Tensor balance_loss() const {
        const std::size_t batch = router_logits_.shape()[0], n = experts_.size();
        std::vector<float> share(n, 0.f);
        for (std::size_t i = 0; i < batch; ++i) share[top_[2 * i]] += 1.f / float(batch);
        auto mean_prob = mean(nn::softmax(router_logits_, 1), {0});
        return sum(mean_prob * Tensor::from_data(share.data(), {n})) * float(n);
    }

    // Which expert each row ranked first in the last forward.
    Index top1() const {
        Index t;
        for (std::size_t i = 0; i < top_.size(); i += 2) t.push_back(top_[i]);
        return t;
    }
    std::size_t size() const { return experts_.size(); }

private:
    std::shared_ptr<nn::Linear<float>> router_;
    std::vector<std::shared_ptr<nn::MLP<float>>> experts_;
    Tensor router_logits_;
    Index top_;
};

// Full-batch Adam on cross-entropy (plus the balancing loss for the mixture).
void train(nn::Module& model, const Data& d, const Options& o, MixtureOfExperts* moe = nullptr) {
    nn::Adam<float> opt(model.parameters(), 0.01);
    // The mixture stays eager: its top-2 routing picks experts by the router's values, a choice a captured program would freeze.
    auto step = program::backward_step<float>(
        model.parameters(),
        [&](const compile::StepInputs<float>& in) {
            auto loss = nn::cross_entropy(model(in.tensors[0]), in.indices[0]);
            if (moe) loss = loss + moe->balance_loss() * float(o.balance);
            return std::vector<Tensor>{loss};
        },
        o.eager || moe != nullptr);
    for (int i = 0; i < o.steps; ++i) {
        step({{d.x}, {d.labels}});
        opt.step();
    }
}

double accuracy(nn::Module& model, const Data& d) {
    NoGradGuard no_grad;
    return nn::accuracy(model(d.x), d.labels);
}

std::string percent(double a) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f%%", 100 * a);
    return buf;
}

plot::DecisionRegions regions_of(const std::string& title, nn::Module& model, const Data& d, bool router = false,
                                 MixtureOfExperts* moe = nullptr) {
    plot::DecisionRegions r;
    r.title = title;
    r.x_min = r.y_min = -3.4;
    r.x_max = r.y_max = 3.4;
    r.grid_w = r.grid_h = 170;
    auto g = r.grid_inputs();
    std::vector<float> grid(g.begin(), g.end());
    NoGradGuard no_grad;
    auto out = model(Tensor::from_data(grid.data(), {grid.size() / 2, 2}));
    if (router) {
        for (auto e : moe->top1()) r.grid_class.push_back(int(e));
        for (std::size_t e = 0; e < moe->size(); ++e) r.class_names.push_back("expert " + std::to_string(e));
        r.legend = true;
        return r;  // no data points: their colours would read as experts
    }
    for (auto c : nn::predict_classes(out)) r.grid_class.push_back(int(c));
    const auto& x = d.x.value();
    for (std::size_t i = 0; i < d.labels.size(); ++i) {
        r.px.push_back(x(i, 0));
        r.py.push_back(x(i, 1));
        r.plabel.push_back(int(d.labels[i]));
    }
    r.legend = false;
    return r;
}

int program_main(int argc, char** argv) {
    Options o;
    CLI::App app{"Mixture of experts with top-2 routing vs a single expert"};
    app.add_option("--seed", o.seed, "Random seed (data and initialisation)")->capture_default_str();
    app.add_option("--out-dir", o.out_dir, "Where the pictures go")->capture_default_str();
    app.add_option("--experts", o.experts, "Number of experts (>= 2)")->check(CLI::Range(2, 64))->capture_default_str();
    app.add_option("--hidden", o.hidden, "Hidden units per expert")->capture_default_str();
    app.add_option("--steps", o.steps, "Adam steps")->capture_default_str();
    app.add_option("--balance", o.balance, "Weight of the load-balancing loss (0: none)")->capture_default_str();
    app.add_flag("--quick", o.quick, "Smoke test: 200 points per cluster, 1500 steps");
    app.add_flag("--eager", o.eager, program::kEagerHelp);
    CLI11_PARSE(app, argc, argv);
    program::prepare_out_dir(o.out_dir);  // refused now, not after the work
    if (o.quick) {
        o.points = 200;
        o.steps = 1500;
    }

    set_num_threads(1);  // small matrices: one BLAS thread is fastest, and smoke tests run side by side
    const auto started = std::chrono::steady_clock::now();
    Generator gen(o.seed);
    const Data train_set = make_data(o.points, gen), test_set = make_data(o.points, gen);

    nn::MLP<float> single({2, o.hidden, 2}, "tanh", nn::Head::identity, gen);
    nn::MLP<float> dense({2, 2 * o.hidden, 2}, "tanh", nn::Head::identity, gen);
    MixtureOfExperts moe(o.experts, o.hidden, gen);
    train(single, train_set, o);
    train(dense, train_set, o);
    train(moe, train_set, o, &moe);

    const double single_acc = accuracy(single, test_set), dense_acc = accuracy(dense, test_set),
                 moe_acc = accuracy(moe, test_set);
    std::printf("4 clusters x %zu points, each cluster with its own labelling rule; test accuracy:\n", o.points);
    auto row = [](const std::string& name, double acc, std::size_t params, const char* note) {
        std::printf("  %-38s %6.1f%%  (%zu parameters%s)\n", name.c_str(), 100 * acc, params, note);
    };
    const std::string h = std::to_string(o.hidden), h2 = std::to_string(2 * o.hidden);
    row("one expert alone, MLP 2-" + h + "-2", single_acc, single.num_parameters(), "");
    row("dense MLP 2-" + h2 + "-2 (compute of top-2)", dense_acc, dense.num_parameters(), "");
    row("mixture of " + std::to_string(o.experts) + " experts 2-" + h + "-2, top-2", moe_acc,
        moe.num_parameters(), ", 2 experts run per input");
    std::printf("\n");

    // Where the router sends each cluster (top-1 choice, test set).
    {
        NoGradGuard no_grad;
        moe(test_set.x);
    }
    auto top1 = moe.top1();
    std::vector<std::vector<int>> table(4, std::vector<int>(o.experts, 0));
    std::vector<double> load(o.experts, 0);
    for (std::size_t i = 0; i < top1.size(); ++i) {
        table[test_set.cluster[i]][top1[i]]++;
        load[top1[i]] += 1.0 / double(top1.size());
    }
    std::printf("router's first choice per cluster (test inputs)\n%10s", "");
    for (std::size_t e = 0; e < o.experts; ++e) std::printf(" expert%-2zu", e);
    std::printf("\n");
    for (int c = 0; c < 4; ++c) {
        std::printf("cluster %d ", c);
        for (int v : table[c]) std::printf(" %8d", v);
        std::printf("\n");
    }
    std::printf("load    %s", "  ");
    std::size_t used = 0;
    for (double f : load) {
        std::printf(" %7.1f%%", 100 * f);
        used += f >= 0.05;
    }
    std::printf("\n\n");

    // Pictures: decision regions, the router's map, and the load.
    const auto dir = std::filesystem::path(o.out_dir);
    std::filesystem::create_directories(dir);
    plot::Sheet sheet;
    sheet.title = "Mixture of experts (top-2 of " + std::to_string(o.experts) + ") vs one expert of the same size";
    sheet.columns = 3;
    sheet.cell_width = 440;
    sheet.cell_height = 440;
    sheet.add(regions_of("one expert (MLP 2-" + std::to_string(o.hidden) + "-2)", single, test_set),
              "test accuracy " + percent(single_acc));
    sheet.add(regions_of("mixture of experts", moe, test_set), "test accuracy " + percent(moe_acc));
    sheet.add(regions_of("router: first-choice expert", moe, test_set, true, &moe), "where each expert leads");
    plot::save_sheet(sheet, (dir / "moe_regions.png").string());

    plot::Chart bars;  // a histogram drawn as a step line
    bars.title = "Expert load (share of first choices, test set)";
    bars.xlabel = "expert";
    bars.ylabel = "share of inputs";
    bars.y_range = {{0.0, 1.0}};
    std::vector<double> bx, by;
    for (std::size_t e = 0; e < o.experts; ++e) {
        bx.insert(bx.end(), {e - 0.4, e - 0.4, e + 0.4, e + 0.4});
        by.insert(by.end(), {0.0, load[e], load[e], 0.0});
    }
    bars.add("load", bx, by);
    bars.add("even", std::vector<double>{-0.5, o.experts - 0.5},
             std::vector<double>{1.0 / o.experts, 1.0 / o.experts}, plot::Style::Dashed);
    plot::save_chart(bars, (dir / "expert_load.png").string(), 640, 420);
    std::printf("wrote moe_regions.png and expert_load.png to %s (%.1f s in all)\n\n", dir.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

    const bool beats = moe_acc >= single_acc + 0.03, spread = used >= 2;
    std::printf("%s: the mixture beats one expert of the same size (%.1f%% vs %.1f%%, need +3 points)\n",
                beats ? "CLAIM OK" : "CLAIM FAILED", 100 * moe_acc, 100 * single_acc);
    std::printf("%s: the load is spread: %zu experts lead on >= 5%% of the inputs (need >= 2)\n",
                spread ? "CLAIM OK" : "CLAIM FAILED", used);
    return beats && spread ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return program::run_main(argc, argv, program_main); }

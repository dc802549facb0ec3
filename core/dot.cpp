#include <tapegrad/core/dot.hpp>

#include <sstream>
#include <unordered_map>

#include <tapegrad/core/node.hpp>
#include <tapegrad/core/op.hpp>

namespace tapegrad {

template <class T>
std::string to_dot(const BasicTensor<T>& root) {
    std::ostringstream os;
    os << "digraph tapegrad {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
    if (!root.grad_fn()) {
        os << "  t0 [shape=ellipse, label=\"" << (root.requires_grad() ? "leaf " : "tensor ")
           << detail::shape_str(root.shape()) << "\"];\n}\n";
        return os.str();
    }
    std::unordered_map<const void*, std::string> ids;
    auto id_of = [&](const void* p, const char* prefix) {
        auto it = ids.find(p);
        if (it != ids.end()) return std::make_pair(it->second, false);
        std::string id = prefix + std::to_string(ids.size());
        ids.emplace(p, id);
        return std::make_pair(id, true);
    };
    std::vector<detail::Node<T>*> stack{root.grad_fn().get()};
    id_of(stack.back(), "n");
    std::size_t constants = 0;
    while (!stack.empty()) {
        auto* n = stack.back();
        stack.pop_back();
        auto self = id_of(n, "n").first;
        os << "  " << self << " [shape=box, style=filled, fillcolor=\"#dbe9f6\", label=\"" << n->name << " #"
           << n->seq << "\\n" << detail::shape_str(n->out_shape) << "\"];\n";
        for (std::size_t i = 0; i < n->inputs.size(); ++i) {
            const auto& e = n->inputs[i];
            std::string from;
            if (e.fn) {
                auto [id, fresh] = id_of(e.fn.get(), "n");
                if (fresh) stack.push_back(e.fn.get());
                from = id;
            } else if (auto leaf = e.leaf.lock()) {
                auto [id, fresh] = id_of(leaf.get(), "l");
                if (fresh)
                    os << "  " << id << " [shape=ellipse, style=filled, fillcolor=\"#f6e7c1\", label=\"leaf "
                       << detail::shape_str(e.shape) << "\\nrequires_grad\"];\n";
                from = id;
            } else {
                from = "c" + std::to_string(constants++);
                os << "  " << from << " [shape=ellipse, color=grey, fontcolor=grey, label=\"const "
                   << detail::shape_str(e.shape) << "\"];\n";
            }
            os << "  " << from << " -> " << self << " [label=\"" << i << "\", fontsize=8];\n";
        }
    }
    os << "}\n";
    return os.str();
}

template std::string to_dot(const BasicTensor<float>&);
template std::string to_dot(const BasicTensor<double>&);

}  // namespace tapegrad

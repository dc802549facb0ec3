// Fusion (docs/compile.md, "Fusion"): consecutive elementwise steps, and the
// reductions over rows between them, replayed as one loop over blocks, so
// every block of every value stays in cache from the step that writes it
// to the last one that reads it.
#include <tapegrad/core/compile/program.hpp>

#include <algorithm>
#include <unordered_map>

namespace tapegrad::compile::internal {

namespace {

// Elements per block of a fused group: 4 KiB per row, so the rows a group
// keeps live at once stay in L1 beside the block of each whole operand.
template <class T>
constexpr std::size_t block_elements = 4096 / sizeof(T);
// Rows are a cache line longer than a block: rows 4 KiB apart would put the
// same element of every row at the same address bits below 4 KiB, and a
// load from one row after a store to another would wait on a false
// dependency (4K aliasing).
template <class T>
constexpr std::size_t row_padding = 64 / sizeof(T);
// A broadcast operand of a fused run: results of at most this many axes.
constexpr std::size_t kMaxExpandedAxes = 8;
// A reduction joins a run when one of its rows fits this many bytes (a block
// holds whole rows: longer ones would take the scratch rows out of cache).
constexpr std::size_t kMaxRowBytes = 32 * 1024;

// `narrow` (the result of reducing rows of `cols` elements, kept as [..., 1])
// read by an op of shape `wide` ([..., cols]): each row's value repeated
// along its row, the only way a run reads its own row results.
bool along_rows(const Shape& narrow, const Shape& wide, std::size_t cols) {
    if (narrow.size() != wide.size() || wide.empty() || wide.back() != cols || narrow.back() != 1) return false;
    return std::equal(narrow.begin(), narrow.end() - 1, wide.begin());
}

}  // namespace

// The fusion rule. A run of consecutive steps over N "wide" elements: each
// one is
//   - elementwise (a block form, detail::BlockFn) with a result of N
//     elements, each input a wide result of the run, a value of N elements
//     (laid out as the result: broadcasting cannot give equal counts
//     otherwise), a single value, a smaller value broadcast to the result,
//     or a row result of the run repeated along its rows;
//   - a reduction over rows of `cols` elements (a row form,
//     detail::RowForm) of a wide value: its N / cols row results are
//     "narrow" values of the run, and every reduction of the run has the
//     same cols;
//   - elementwise over N / cols elements (after a reduction): its inputs
//     narrow results, values of that many elements, single values or
//     broadcast ones.
// The group walks the N elements in blocks (of whole rows when it reduces),
// every member in order on each block. Wide values read only inside the run
// live in scratch rows of one block; narrow values, and wide ones read
// later (or outputs, gradients), are written whole. The arithmetic per
// element and per row is the ops' own, so results equal the unfused
// program's bit for bit.
template <class T>
void fuse(Program<T>& p) {
    using Step = typename Program<T>::Step;
    using Operand = typename Program<T>::Operand;
    enum Kind { no, wide, narrow, reduce, column };
    struct Run {
        std::size_t n = 0, cols = 0, first = 0;
    };
    const auto pinned = pinned_slots<T>(p);
    std::vector<std::size_t> last(p.ptr.size(), none);  // index of a slot's last reader
    for (std::size_t i = 0; i < p.steps.size(); ++i)
        for (auto in : p.steps[i].in)
            if (in != none) last[in] = i;
    std::vector<std::size_t> produced_at(p.ptr.size(), none);
    std::vector<bool> folded(p.ptr.size(), false);  // a leading reduction's result: whole only after the run
    auto count = [&](std::size_t slot) { return elements(p.shape[slot]); };
    auto inside = [&](std::size_t slot, const Run& r) { return produced_at[slot] != none && produced_at[slot] >= r.first; };
    auto reduction = [&](const Step& s) {
        return s.rows.fn && s.rows.cols > 1 && s.rows.cols * sizeof(T) <= kMaxRowBytes && s.in.size() == 1 &&
               s.in[0] != none;
    };
    auto outside_ok = [&](std::size_t in, std::size_t n, const Shape& out) {
        const std::size_t e = count(in);
        return e == n || e == 1 || (detail::broadcasts_into(p.shape[in], out) && out.size() <= kMaxExpandedAxes);
    };
    auto kind_of = [&](const Step& s, const Run& r) -> Kind {
        if (s.out == none || s.move) return no;
        for (auto in : s.in)
            if (in != none && inside(in, r) && folded[in]) return no;  // complete only after the last block
        const std::size_t e = count(s.out);
        if (reduction(s)) {
            const std::size_t c = s.rows.cols;
            if (count(s.in[0]) != r.n || r.n % c != 0 || (r.cols && r.cols != c)) return no;
            if (s.rows.leading) return e == c ? column : no;
            return e == r.n / c ? reduce : no;
        }
        if (!s.block) return no;
        const Shape& out = p.shape[s.out];
        if (e == r.n) {
            for (auto in : s.in) {
                if (in == none) return no;
                if (!inside(in, r) ? !outside_ok(in, r.n, out)
                                   : count(in) != r.n && !(r.cols && along_rows(p.shape[in], out, r.cols)))
                    return no;
            }
            return wide;
        }
        if (r.cols && e == r.n / r.cols) {
            for (auto in : s.in) {
                if (in == none) return no;
                if (!inside(in, r) ? !outside_ok(in, e, out) : count(in) != e) return no;
            }
            return narrow;
        }
        return no;
    };

    std::vector<Step> out;
    for (std::size_t i = 0; i < p.steps.size();) {
        const Step& head = p.steps[i];
        Run r;
        r.first = i;
        if (reduction(head)) r.n = count(head.in[0]);
        else if (head.block && head.out != none && !head.move) r.n = count(head.out);
        std::vector<Kind> kinds;
        std::size_t j = i;
        if (r.n > 0)
            for (; j < p.steps.size(); ++j) {
                const Kind k = kind_of(p.steps[j], r);
                if (k == no) break;
                if (k == reduce || k == column) r.cols = p.steps[j].rows.cols;
                kinds.push_back(k);
                produced_at[p.steps[j].out] = j;
                folded[p.steps[j].out] = k == column;
            }
        if (j - i < 2) {  // nothing to fuse
            if (head.out != none) produced_at[head.out] = i;
            out.push_back(std::move(p.steps[i]));
            ++i;
            continue;
        }
        typename Program<T>::Fused g;
        g.elements = r.n;
        g.cols = r.cols;
        g.block = r.cols ? std::max<std::size_t>(1, block_elements<T> / r.cols) * r.cols : block_elements<T>;
        g.stride = std::min(r.n, g.block) + row_padding<T>;
        Step step{"fused", {}, {}, {}, {}, none, {}};
        std::unordered_map<std::size_t, std::size_t> row_of;  // wide slot -> scratch row
        std::vector<std::size_t> free_rows;
        std::size_t used = 0;
        auto take_row = [&] {
            if (free_rows.empty()) return used++;
            const std::size_t row = free_rows.back();
            free_rows.pop_back();
            return row;
        };
        for (std::size_t k = i; k < j; ++k) {
            Step& s = p.steps[k];
            const Kind kind = kinds[k - i];
            const std::size_t member_n = kind == narrow ? r.n / r.cols : r.n;  // a reduction reads wide values
            std::vector<std::size_t> temporary;  // rows of expanded operands, free after this member
            typename Program<T>::Member m{s.name, std::move(s.block), std::move(s.rows), {}, {}, 0, kind == narrow};
            for (std::size_t a = 0; a < s.in.size(); ++a) {
                const std::size_t in = s.in[a];
                const bool in_run = produced_at[in] >= i && produced_at[in] < j;
                const std::size_t e = count(in);
                if (auto row = row_of.find(in); row != row_of.end()) {
                    m.in.push_back({Operand::row, row->second});
                } else if (!in_run && e == 1 && member_n != 1) {
                    m.in.push_back({Operand::repeated, in});
                } else if (e != member_n) {  // broadcast: from outside, or a row result along its rows
                    Operand o{Operand::expanded, in};
                    const auto to = kernels::dims(p.shape[s.out]), from = kernels::dims(p.shape[in]);
                    o.walk = kernels::plan<1>(to, {&from});
                    o.copy_row = take_row();
                    temporary.push_back(o.copy_row);
                    m.in.push_back(o);
                } else {
                    m.in.push_back({Operand::whole, in});
                }
                if (m.in.back().kind != Operand::repeated) m.contiguous |= 1u << a;
                if (!in_run && std::find(step.in.begin(), step.in.end(), in) == step.in.end()) step.in.push_back(in);
            }
            // Rows whose value this member reads last are free for later
            // members (not for its own result: no in-place block).
            std::vector<std::size_t> done;
            for (auto in : s.in) {
                auto row = row_of.find(in);
                if (row != row_of.end() && last[in] == k) {
                    done.push_back(row->second);
                    row_of.erase(row);
                }
            }
            if (kind != wide || pinned[s.out] || (last[s.out] != none && last[s.out] >= j)) {
                m.out = {Operand::whole, s.out};
                g.outputs.push_back(s.out);
            } else {
                const std::size_t row = take_row();
                row_of[s.out] = row;
                m.out = {Operand::row, row};
            }
            free_rows.insert(free_rows.end(), done.begin(), done.end());
            free_rows.insert(free_rows.end(), temporary.begin(), temporary.end());
            g.members.push_back(std::move(m));
        }
        g.rows = used;
        step.group = p.groups.size();
        p.groups.push_back(std::move(g));
        out.push_back(std::move(step));
        i = j;
    }
    p.steps = std::move(out);
}

namespace {

// Elements [offset, offset + n) of a value broadcast along `w` (its strides
// along the result's collapsed axes), into dst: along the innermost axis the
// value is either contiguous (copied) or one element (filled).
template <class T>
void expand(const T* src, const kernels::Walk<1>& w, std::size_t offset, std::size_t n, T* dst) {
    const std::size_t axes = w.shape.size(), inner = w.shape.back(), step = w.strides[0].back();
    // Two axes from the start of a row (a bias row over a batch, a column of
    // row values): one tight loop nest, no odometer, no library call per row.
    if (axes == 2 && offset % inner == 0) {
        const std::size_t outer_stride = w.strides[0][0];
        const T* row = src + (offset / inner) * outer_stride;
        if (!step) {
            for (std::size_t done = 0; done < n; row += outer_stride) {
                const std::size_t len = std::min(inner, n - done);
                const T v = *row;
                for (std::size_t j = 0; j < len; ++j) dst[done + j] = v;
                done += len;
            }
            return;
        }
        if (outer_stride == 0 && n >= inner) {  // one row repeated: written once, then doubled
            std::copy(row, row + inner, dst);
            for (std::size_t have = inner; have < n;) {
                const std::size_t more = std::min(have, n - have);
                std::copy(dst, dst + more, dst + have);
                have += more;
            }
            return;
        }
    }
    std::size_t index[kMaxExpandedAxes];
    std::size_t rest = offset, from = 0;
    for (std::size_t a = axes; a-- > 0;) {
        index[a] = rest % w.shape[a];
        rest /= w.shape[a];
        from += index[a] * w.strides[0][a];
    }
    while (n > 0) {
        const std::size_t len = std::min(inner - index[axes - 1], n);
        if (step) std::copy(src + from, src + from + len, dst);
        else std::fill(dst, dst + len, src[from]);
        dst += len;
        n -= len;
        // Next row: the innermost index back to 0, an odometer over the others.
        from -= index[axes - 1] * step;
        index[axes - 1] = 0;
        for (std::size_t a = axes - 1; a-- > 0;) {
            from += w.strides[0][a];
            if (++index[a] < w.shape[a]) break;
            from -= w.strides[0][a] * w.shape[a];
            index[a] = 0;
        }
    }
}

}  // namespace

// One fused group: its whole outputs allocated, then every block through all
// members in order (a per-row member on the block's rows).
template <class T>
void run_fused(Program<T>& p, typename Program<T>::Fused& g) {
    using Operand = typename Program<T>::Operand;
    for (auto slot : g.outputs) {
        p.values[slot] = Array<T>::from_shape(p.shape[slot]);
        p.ptr[slot] = &p.values[slot];
    }
    // The rows live while the group runs: a temporary like any other, in
    // the program's arena from the second replay on.
    auto scratch = Array<T>::from_shape(typename Array<T>::shape_type{g.rows * g.stride});
    T* rows = scratch.data();
    auto at = [&](const Operand& o, std::size_t offset, std::size_t n) -> T* {
        switch (o.kind) {
            case Operand::row: return rows + o.index * g.stride;
            case Operand::whole: return const_cast<T*>(p.ptr[o.index]->data()) + offset;
            case Operand::repeated: return const_cast<T*>(p.ptr[o.index]->data());
            default: {
                T* row = rows + o.copy_row * g.stride;
                expand(p.ptr[o.index]->data(), o.walk, offset, n, row);
                return row;
            }
        }
    };
    const T** in = p.block_args.data();
    for (std::size_t offset = 0; offset < g.elements; offset += g.block) {
        const std::size_t n = std::min(g.block, g.elements - offset);
        for (auto& m : g.members) {
            if (m.rows.fn && m.rows.leading) {  // this block's rows folded into the one result row
                m.rows.fn(at(m.out, 0, g.cols), at(m.in[0], offset, n), n / g.cols, offset == 0);
                continue;
            }
            if (m.rows.fn) {  // this block's rows folded into their results
                m.rows.fn(at(m.out, offset / g.cols, n / g.cols), at(m.in[0], offset, n), n / g.cols, false);
                continue;
            }
            const std::size_t o = m.per_row ? offset / g.cols : offset, c = m.per_row ? n / g.cols : n;
            for (std::size_t k = 0; k < m.in.size(); ++k) in[k] = at(m.in[k], o, c);
            m.block(at(m.out, o, c), in, m.contiguous, c);
        }
    }
}

template void fuse<float>(Program<float>&);
template void fuse<double>(Program<double>&);
template void run_fused<float>(Program<float>&, Program<float>::Fused&);
template void run_fused<double>(Program<double>&, Program<double>::Fused&);

}  // namespace tapegrad::compile::internal

// The helper table mechanism and the bpf_conformance test helpers.
#include "vm/vm.hpp"

#include <fmt/format.h>

#include <cmath>

namespace bpfsim::vm {

namespace {

struct NamedHelper {
    int32_t id;
    std::string_view name;
};

constexpr NamedHelper kKernelHelpers[] = {
#define HELPER_NAME(ID, NAME) {ID, #NAME},
#include "vm/helper_names.def"
#undef HELPER_NAME
};

constexpr bool ids_are_dense() {
    for (std::size_t i = 0; i < std::size(kKernelHelpers); ++i)
        if (kKernelHelpers[i].id != static_cast<int32_t>(i)) return false;
    return true;
}
static_assert(ids_are_dense());

}  // namespace

std::string_view kernel_helper_name(int32_t id) {
    if (id <= 0 || static_cast<std::size_t>(id) >= std::size(kKernelHelpers)) return {};
    return kKernelHelpers[id].name;
}

int32_t kernel_helper_max_id() { return static_cast<int32_t>(std::size(kKernelHelpers)) - 1; }

void HelperTable::add(Helper helper) {
    if (helper.id < 0 || helper.id > 1'000'000)
        throw Error(ErrorCode::Internal, fmt::format("helper id {} out of range", helper.id));
    if (!helper.fn) throw Error(ErrorCode::Internal, fmt::format("helper {} has no implementation", helper.id));
    std::vector<Helper>& v = by_id_.edit();
    if (static_cast<std::size_t>(helper.id) >= v.size()) v.resize(helper.id + 1);
    v[helper.id] = std::move(helper);
}

std::size_t HelperTable::size() const {
    std::size_t n = 0;
    for (const auto& h : by_id_.get()) n += h.fn != nullptr;
    return n;
}

namespace {

// ubpf's test helpers; the conformance suite's .data files call them by number.
uint64_t gather_bytes(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, Env&) {
    return ((a & 0xff) << 32) | ((b & 0xff) << 24) | ((c & 0xff) << 16) | ((d & 0xff) << 8) | (e & 0xff);
}

uint64_t memfrob(uint64_t ptr, uint64_t n, uint64_t, uint64_t, uint64_t, Env& env) {
    if (n && !env.mem.allows(ptr, n, kReadWrite)) {
        env.request_trap(fmt::format("memfrob: {}", env.mem.explain(ptr, n, kReadWrite)));
        return 0;
    }
    auto* p = reinterpret_cast<uint8_t*>(ptr);
    for (uint64_t i = 0; i < n; ++i) p[i] ^= 42;
    return 0;
}

uint64_t no_op(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, Env&) { return 0; }

uint64_t sqrti(uint64_t x, uint64_t, uint64_t, uint64_t, uint64_t, Env&) {
    return static_cast<uint64_t>(std::sqrt(static_cast<double>(x)));
}

uint64_t strcmp_ext(uint64_t a, uint64_t b, uint64_t, uint64_t, uint64_t, Env& env) {
    // Compare byte by byte, checking each byte against the memory map.
    for (uint64_t i = 0;; ++i) {
        if (!env.mem.allows(a + i, 1, kRead) || !env.mem.allows(b + i, 1, kRead)) {
            env.request_trap("strcmp_ext: string runs outside mapped memory");
            return 0;
        }
        const auto ca = *reinterpret_cast<const uint8_t*>(a + i);
        const auto cb = *reinterpret_cast<const uint8_t*>(b + i);
        if (ca != cb || ca == 0) return static_cast<uint64_t>(int64_t(ca) - int64_t(cb));
    }
}

uint64_t unwind(uint64_t a, uint64_t, uint64_t, uint64_t, uint64_t, Env& env) {
    if (a == 0) env.request_exit(0);
    return a;
}

}  // namespace

HelperTable conformance_helpers() {
    HelperTable t;
    using A = ArgKind;
    t.add({0, "gather_bytes", {RetKind::Integer, {A::Anything, A::Anything, A::Anything, A::Anything, A::Anything}}, gather_bytes});
    t.add({1, "memfrob", {RetKind::Integer, {A::Mem, A::ConstSize, A::None, A::None, A::None}}, memfrob});
    t.add({2, "no_op", {RetKind::Integer, {}}, no_op});
    t.add({3, "sqrti", {RetKind::Integer, {A::Anything, A::None, A::None, A::None, A::None}}, sqrti});
    t.add({4, "strcmp_ext", {RetKind::Integer, {A::ConstStr, A::ConstStr, A::None, A::None, A::None}}, strcmp_ext});
    t.add({5, "unwind", {RetKind::Integer, {A::Anything, A::None, A::None, A::None, A::None}}, unwind});
    return t;
}

}  // namespace bpfsim::vm

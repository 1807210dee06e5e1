// Networking helpers against the simulated network and skb: tunnel keys and options,
// bpf_clone_redirect, bpf_sk_assign, bpf_fib_lookup with World routes, bpf_get_stackid, and
// bpf_skb_adjust_room / change_head as BPF_PROG_TEST_RUN's skb behaves (measured on Linux 6.18).
// Programs are assembled and wrapped in a minimal relocatable BPF object built here.
#include "harness/harness.hpp"
#include "elf_writer.hpp"

#include <catch2/catch.hpp>

#include <elf.h>
#include <linux/bpf.h>

#include <fmt/format.h>

#include <cstring>

using namespace bpfsim;
using namespace bpfsim::harness;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr int64_t kEINVAL = -22, kENOMEM = -12, kENOENT = -2, kEFAULT = -14, kEPROTO = -71, kENODEV = -19,
                  kEOPNOTSUPP = -95, kEAFNOSUPPORT = -97, kEALREADY = -114, kENOTSUPP = -524;

// A legacy map definition (struct bpf_map_def) in the object's "maps" section.
struct MapSpec {
    std::string name;
    uint32_t type, key_size, value_size, max_entries;
};

// `lddw %rN, MAP(i)` in program text loads map i (a relocation against its symbol).
std::string map_ref(int i) { return fmt::format("{:#x}", 0x6d617000 + i); }

template <class T>
void append(Bytes& b, const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
}

// A relocatable ELF object: the program "prog" in `section`, a license, the maps.
Bytes object_bytes(std::string_view section, std::string_view text, const std::vector<MapSpec>& maps) {
    auto insns = vm::assemble(text, "net_helpers.s");
    if (!insns) FAIL(insns.error().describe());
    std::string strtab(1, '\0');
    const auto str = [&](std::string_view s) {
        const auto off = static_cast<uint32_t>(strtab.size());
        strtab.append(s).push_back('\0');
        return off;
    };
    // Sections: 1 program, 2 license, 3 maps, 4 its relocations, 5 .symtab, 6 .strtab, 7 .shstrtab.
    Bytes syms(sizeof(Elf64_Sym), 0), rels, mapdefs, code;
    Elf64_Sym prog{};
    prog.st_name = str("prog");
    prog.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
    prog.st_shndx = 1;
    prog.st_size = insns->size() * 8;
    append(syms, prog);
    for (std::size_t i = 0; i < maps.size(); ++i) {
        Elf64_Sym m{};
        m.st_name = str(maps[i].name);
        m.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
        m.st_shndx = 3;
        m.st_value = i * 20;
        m.st_size = 20;
        append(syms, m);
        for (uint32_t v : {maps[i].type, maps[i].key_size, maps[i].value_size, maps[i].max_entries, 0u}) append(mapdefs, v);
    }
    for (std::size_t pc = 0; pc < insns->size(); ++pc) {
        vm::Insn& in = (*insns)[pc];
        if (in.code != 0x18 || (static_cast<uint32_t>(in.imm) & 0xffffff00) != 0x6d617000) continue;
        const uint64_t sym = 2 + (static_cast<uint32_t>(in.imm) & 0xff);
        in.imm = 0;
        append(rels, uint64_t(pc * 8));
        append(rels, (sym << 32) | 1);   // R_BPF_64_64
    }
    for (const auto& in : *insns) append(code, in.raw());
    std::string shstrtab(1, '\0');
    const auto shstr = [&](std::string_view s) {
        const auto off = static_cast<uint32_t>(shstrtab.size());
        shstrtab.append(s).push_back('\0');
        return off;
    };
    using Sec = bpfsim::testing::ElfSection;
    std::vector<Sec> secs;
    secs.push_back({0, SHT_NULL, 0, {}});
    secs.push_back({shstr(section), SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, code});
    secs.push_back({shstr("license"), SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, Bytes{'G', 'P', 'L', 0}});
    secs.push_back({shstr("maps"), SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, mapdefs});
    secs.push_back({shstr(".rel" + std::string(section)), SHT_REL, 0, rels, 5, 1, 16});
    secs.push_back({shstr(".symtab"), SHT_SYMTAB, 0, syms, 6, 1, sizeof(Elf64_Sym)});
    secs.push_back({shstr(".strtab"), SHT_STRTAB, 0, Bytes(strtab.begin(), strtab.end())});
    const uint32_t shstr_name = shstr(".shstrtab");
    secs.push_back({shstr_name, SHT_STRTAB, 0, Bytes(shstrtab.begin(), shstrtab.end())});

    return bpfsim::testing::write_elf(secs);
}

// An object and its world (the world points into the object, so both live here).
struct Loaded {
    std::unique_ptr<Object> obj;
    std::unique_ptr<World> world;
    World& w() { return *world; }
    ProgramRun run(const Bytes& packet) {
        auto r = world->run_packet("prog", packet);
        if (!r) FAIL(r.error().describe());
        if (r->result.trap) FAIL(r->result.trap->message);
        return *r;
    }
    int64_t r0(const Bytes& packet) { return static_cast<int64_t>(run(packet).result.r0); }
};

Loaded load(std::string_view section, std::string_view text, const std::vector<MapSpec>& maps = {}) {
    auto elf = ElfFile::from_bytes(object_bytes(section, text, maps), "net_helpers.o");
    if (!elf) FAIL(elf.error().describe());
    auto obj = Object::from_elf(std::move(*elf));
    if (!obj) FAIL(obj.error().describe());
    Loaded l;
    l.obj = std::make_unique<Object>(std::move(*obj));
    auto w = World::create(*l.obj);
    if (!w) FAIL(w.error().describe());
    l.world = std::move(*w);
    return l;
}

// A helper call with r1 = the context (kept in r6) and the given r2..r5; "fp-N" is the
// address N bytes below the frame pointer.
std::string call(int helper, std::string_view r2 = "", std::string_view r3 = "", std::string_view r4 = "", std::string_view r5 = "") {
    std::string s = "mov %r1, %r6\n";
    const std::string_view regs[] = {r2, r3, r4, r5};
    for (int i = 0; i < 4; ++i) {
        if (regs[i].starts_with("fp")) s += fmt::format("mov %r{0}, %r10\nadd %r{0}, {1}\n", i + 2, regs[i].substr(2));
        else if (!regs[i].empty()) s += fmt::format("mov %r{}, {}\n", i + 2, regs[i]);
    }
    return s + fmt::format("call {}\n", helper);
}

// An Ethernet frame of the given type with `payload` zero bytes.
Bytes frame(uint16_t ethertype, std::size_t payload) {
    Bytes b(14 + payload, 0);
    b[0] = b[6] = 0x02;   // 02:00:00:00:00:01 from 02:00:00:00:00:02
    b[5] = 1;
    b[11] = 2;
    b[12] = static_cast<uint8_t>(ethertype >> 8);
    b[13] = static_cast<uint8_t>(ethertype);
    return b;
}

uint64_t u64_at(const Bytes& b, std::size_t off) {
    REQUIRE(off + 8 <= b.size());
    uint64_t v;
    std::memcpy(&v, b.data() + off, 8);
    return v;
}
int64_t s64_at(const Bytes& b, std::size_t off) { return static_cast<int64_t>(u64_at(b, off)); }

std::array<uint8_t, 16> ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return {a, b, c, d}; }

}  // namespace

TEST_CASE("tunnel options go with a key set in the same run, and read back as the kernel's do", "[net][tunnel]") {
    // Results are stored into the packet after the Ethernet header, 8 bytes each.
    const std::string prog = "mov %r6, %r1\nldxw %r7, [%r6+76]\nmov %r1, 0\n"
                             "stxdw [%r10-48], %r1\nstxdw [%r10-40], %r1\nstxdw [%r10-32], %r1\n"
                             "stxdw [%r10-24], %r1\nstxdw [%r10-16], %r1\nstxdw [%r10-8], %r1\n"
                             "lddw %r1, 0x0807060504030201\nstxdw [%r10-64], %r1\n"
                             // 16: options before any key
                             + call(BPF_FUNC_skb_set_tunnel_opt, "fp-64", "8") +
                             "stxdw [%r7+16], %r0\n"
                             // 24: no key to get yet
                             + call(BPF_FUNC_skb_get_tunnel_key, "fp-48", "44", "0") +
                             "stxdw [%r7+24], %r0\n"
                             // 32: a key: id 42, remote 10.0.0.1, local 10.0.0.2, ttl 64
                             "stw [%r10-48], 42\nstw [%r10-44], 0x0a000001\nstw [%r10-20], 0x0a000002\nstb [%r10-27], 64\n"
                             + call(BPF_FUNC_skb_set_tunnel_key, "fp-48", "44", "0") +
                             "stxdw [%r7+32], %r0\n"
                             // 40: 8 bytes of options; 48: 6 bytes are not whole words
                             + call(BPF_FUNC_skb_set_tunnel_opt, "fp-64", "8") + "stxdw [%r7+40], %r0\n" +
                             call(BPF_FUNC_skb_set_tunnel_opt, "fp-64", "6") + "stxdw [%r7+48], %r0\n"
                             // 56: read into 16 bytes (64, 72: what was read); 80: 4 bytes are too few
                             + call(BPF_FUNC_skb_get_tunnel_opt, "fp-80", "16") +
                             "stxdw [%r7+56], %r0\nldxdw %r1, [%r10-80]\nstxdw [%r7+64], %r1\nldxdw %r1, [%r10-72]\nstxdw [%r7+72], %r1\n" +
                             call(BPF_FUNC_skb_get_tunnel_opt, "fp-80", "4") + "stxdw [%r7+80], %r0\n"
                             // 88: the key with its flags (96 id, 104 remote, 112 local, 120 flags); 128: as IPv6
                             + call(BPF_FUNC_skb_get_tunnel_key, "fp-48", "44", "16") +
                             "stxdw [%r7+88], %r0\n"
                             "ldxw %r1, [%r10-48]\nstxdw [%r7+96], %r1\nldxw %r1, [%r10-44]\nstxdw [%r7+104], %r1\n"
                             "ldxw %r1, [%r10-20]\nstxdw [%r7+112], %r1\nldxh %r1, [%r10-26]\nstxdw [%r7+120], %r1\n" +
                             call(BPF_FUNC_skb_get_tunnel_key, "fp-48", "44", "1") +
                             "stxdw [%r7+128], %r0\nmov %r0, 0\nexit\n";
    auto l = load("tc", prog);
    for (int round = 0; round < 2; ++round) {   // the second run starts without the first run's key
        const Bytes out = l.run(frame(0x0800, 140)).packet;
        CHECK(s64_at(out, 16) == kEINVAL);
        CHECK(s64_at(out, 24) == kEINVAL);
        CHECK(s64_at(out, 32) == 0);
        CHECK(s64_at(out, 40) == 0);
        CHECK(s64_at(out, 48) == kEINVAL);
        CHECK(s64_at(out, 56) == 8);
        CHECK(u64_at(out, 64) == 0x0807060504030201ull);
        CHECK(u64_at(out, 72) == 0);   // the rest of the buffer is zeroed
        CHECK(s64_at(out, 80) == kENOMEM);
        CHECK(s64_at(out, 88) == 0);
        CHECK(u64_at(out, 96) == 42);
        CHECK(u64_at(out, 104) == 0x0a000002);   // a received packet's view: remote and local swap
        CHECK(u64_at(out, 112) == 0x0a000001);
        // __be16 TUNNEL_CSUM | TUNNEL_KEY | TUNNEL_NOCACHE | the options-present bits
        CHECK(u64_at(out, 120) == __builtin_bswap16(0x2005 | 0xd800));
        CHECK(s64_at(out, 128) == kEPROTO);
    }
    // After a run, the world shows what the program attached.
    CHECK(l.w().tunnel.set);
    CHECK(l.w().tunnel.id == 42);
    CHECK(l.w().tunnel.remote[0] == 0x0a000001);
    CHECK(l.w().tunnel.ttl == 64);
    CHECK(l.w().tunnel.options.size() == 8);
}

TEST_CASE("tunnel option sizes and a key without options", "[net][tunnel]") {
    auto with = [](int opt_size, int get_size) {
        // A key with flags (BPF_F_ZERO_CSUM_TX), options of opt_size bytes (0: none), then
        // bpf_skb_get_tunnel_opt into get_size bytes.
        std::string p = "mov %r6, %r1\nmov %r1, 0\n";
        for (int off = 8; off <= 304; off += 8) p += fmt::format("stxdw [%r10-{}], %r1\n", off);
        p += call(BPF_FUNC_skb_set_tunnel_key, "fp-48", "44", "2");
        if (opt_size) p += call(BPF_FUNC_skb_set_tunnel_opt, "fp-304", std::to_string(opt_size));
        p += "jne %r0, 0, +" + std::to_string(5) + "\n" +
             call(BPF_FUNC_skb_get_tunnel_opt, "fp-304", std::to_string(get_size));
        return p + "exit\n";
    };
    CHECK(load("tc", with(0, 16)).r0(frame(0x0800, 40)) == kENOENT);      // a key, but no options
    CHECK(load("tc", with(252, 256)).r0(frame(0x0800, 40)) == 252);
    CHECK(load("tc", with(256, 256)).r0(frame(0x0800, 40)) == kENOMEM);   // more than options_len (a u8) holds
    CHECK(load("tc", with(252, 16)).r0(frame(0x0800, 40)) == kENOMEM);
}

TEST_CASE("bpf_clone_redirect needs a device of the world; bpf_sk_assign refuses", "[net][redirect]") {
    const std::string prog = "mov %r6, %r1\nldxw %r7, [%r6+76]\n" + call(BPF_FUNC_clone_redirect, "1", "0") + "stxdw [%r7+16], %r0\n" +
                             call(BPF_FUNC_clone_redirect, "1", std::to_string(BPF_F_INGRESS)) + "stxdw [%r7+24], %r0\n" +
                             call(BPF_FUNC_clone_redirect, "7", "0") + "stxdw [%r7+32], %r0\n" +
                             call(BPF_FUNC_clone_redirect, "1", "2") + "stxdw [%r7+40], %r0\n" +
                             call(BPF_FUNC_sk_assign, "0", "0") + "stxdw [%r7+48], %r0\n" +
                             call(BPF_FUNC_sk_assign, "0x1000", "0") + "stxdw [%r7+56], %r0\n" +
                             call(BPF_FUNC_sk_assign, "0x1000", "1") + "stxdw [%r7+64], %r0\nmov %r0, 0\nexit\n";
    auto l = load("tc", prog);
    Bytes out = l.run(frame(0x0800, 60)).packet;
    CHECK(s64_at(out, 16) == 0);         // the loopback device the packet came from
    CHECK(s64_at(out, 24) == 0);
    CHECK(s64_at(out, 32) == kEINVAL);   // no device 7
    CHECK(s64_at(out, 40) == kEINVAL);   // unknown flags
    CHECK(s64_at(out, 48) == kEINVAL);   // no socket
    CHECK(s64_at(out, 56) == kEOPNOTSUPP);   // a test run's skb is not at tc ingress
    CHECK(s64_at(out, 64) == kEINVAL);
    l.w().devices.push_back(NetDevice{7, {2, 0, 0, 0, 0, 7}, 1500, false});
    out = l.run(frame(0x0800, 60)).packet;
    CHECK(s64_at(out, 32) == 0);
}

namespace {

// bpf_fib_lookup on params at the start of the packet's payload; the packet comes back with
// the params as the helper left them.
std::string fib_prog(bool xdp, uint32_t flags, int plen = 64) {
    return fmt::format("mov %r6, %r1\nldxw %r2, [%r6+{}]\nadd %r2, 14\nmov %r1, %r6\nmov %r3, {}\nmov %r4, {}\ncall {}\nexit\n",
                       xdp ? 0 : 76, plen, flags, int(BPF_FUNC_fib_lookup));
}

Bytes fib_packet(const bpf_fib_lookup& p) {
    Bytes b = frame(0x0800, sizeof p + 16);
    std::memcpy(b.data() + 14, &p, sizeof p);
    return b;
}

bpf_fib_lookup params_of(const ProgramRun& r) {
    bpf_fib_lookup p;
    REQUIRE(r.packet.size() >= 14 + sizeof p);
    std::memcpy(&p, r.packet.data() + 14, sizeof p);
    return p;
}

bpf_fib_lookup v4(uint32_t ifindex, std::array<uint8_t, 16> dst) {
    bpf_fib_lookup p{};
    p.family = 2;
    p.ifindex = ifindex;
    std::memcpy(&p.ipv4_dst, dst.data(), 4);
    const auto src = ip4(10, 0, 0, 1);
    std::memcpy(&p.ipv4_src, src.data(), 4);
    return p;
}

struct Fib {
    Loaded l;
    int64_t rc = 0;
    bpf_fib_lookup out{};
    Fib(bool xdp, uint32_t flags) : l(load(xdp ? "xdp" : "tc", fib_prog(xdp, flags))) {}
    Fib& run(const bpf_fib_lookup& p) {
        const ProgramRun r = l.run(fib_packet(p));
        rc = static_cast<int64_t>(r.result.r0);
        out = params_of(r);
        return *this;
    }
};

}  // namespace

TEST_CASE("bpf_fib_lookup in a new world answers as a test run on a host that does not forward", "[net][fib]") {
    Fib f(false, 0);
    CHECK(f.run(v4(1, ip4(10, 0, 0, 2))).rc == BPF_FIB_LKUP_RET_FWD_DISABLED);   // the loopback device
    CHECK(f.run(v4(9, ip4(10, 0, 0, 2))).rc == kENODEV);
    bpf_fib_lookup p = v4(1, ip4(10, 0, 0, 2));
    p.family = 99;
    CHECK(f.run(p).rc == kEAFNOSUPPORT);
    // IPv6 link-local and multicast addresses are never forwarded, whatever the device.
    bpf_fib_lookup p6{};
    p6.family = 10;
    p6.ifindex = 9;
    reinterpret_cast<uint8_t*>(p6.ipv6_dst)[0] = 0xfe;
    reinterpret_cast<uint8_t*>(p6.ipv6_dst)[1] = 0x80;
    CHECK(f.run(p6).rc == BPF_FIB_LKUP_RET_NOT_FWDED);
    reinterpret_cast<uint8_t*>(p6.ipv6_dst)[0] = 0x20;
    CHECK(f.run(p6).rc == kENODEV);
    CHECK(Fib(false, 0x40).run(v4(1, ip4(10, 0, 0, 2))).rc == kEINVAL);   // unknown flag
    CHECK(load("tc", fib_prog(false, 0, 63)).r0(fib_packet(v4(1, ip4(10, 0, 0, 2)))) == kEINVAL);
    CHECK(Fib(true, 0).run(v4(1, ip4(10, 0, 0, 2))).rc == BPF_FIB_LKUP_RET_FWD_DISABLED);
}

TEST_CASE("bpf_fib_lookup routes by the world's routes and neighbours", "[net][fib]") {
    auto setup = [](World& w) {
        w.devices[0].forwarding = true;
        w.devices.push_back(NetDevice{3, {0x02, 0, 0, 0, 0, 3}, 1500, false});
        w.devices.push_back(NetDevice{4, {0x02, 0, 0, 0, 0, 4}, 9000, false});
        Route def;                                   // default via 192.168.1.1 dev 3 metric 10
        def.gateway = ip4(192, 168, 1, 1);
        def.ifindex = 3;
        def.metric = 10;
        Route net10;                                 // 10.1.0.0/16 dev 4 (on-link)
        net10.dst = ip4(10, 1, 0, 0);
        net10.prefix_len = 16;
        net10.ifindex = 4;
        net10.prefsrc = ip4(10, 1, 0, 254);
        Route hole = net10;                          // blackhole 10.1.2.0/24
        hole.dst = ip4(10, 1, 2, 0);
        hole.prefix_len = 24;
        hole.type = Route::Type::Blackhole;
        Route unreach = hole;
        unreach.dst = ip4(10, 1, 3, 0);
        unreach.type = Route::Type::Unreachable;
        Route prohibit = hole;
        prohibit.dst = ip4(10, 1, 4, 0);
        prohibit.type = Route::Type::Prohibit;
        Route other = def;                           // table 100: default dev 4
        other.table = 100;
        other.gateway = {};
        other.ifindex = 4;
        other.metric = 7;
        w.routes = {def, net10, hole, unreach, prohibit, other};
        w.neighbours.push_back(Neighbour{2, ip4(192, 168, 1, 1), 3, {0x02, 0xaa, 0, 0, 0, 1}});
        w.neighbours.push_back(Neighbour{2, ip4(10, 1, 9, 9), 4, {0x02, 0xbb, 0, 0, 0, 2}});
    };
    Fib f(false, 0);
    setup(f.l.w());
    SECTION("the default route: the gateway becomes the destination, MACs from the neighbour and device") {
        f.run(v4(1, ip4(8, 8, 8, 8)));
        CHECK(f.rc == BPF_FIB_LKUP_RET_SUCCESS);
        CHECK(f.out.ifindex == 3);
        CHECK(f.out.rt_metric == 10);
        CHECK(std::memcmp(&f.out.ipv4_dst, ip4(192, 168, 1, 1).data(), 4) == 0);
        CHECK(f.out.dmac[1] == 0xaa);
        CHECK(f.out.smac[5] == 3);
        CHECK(f.out.mtu_result == 1500);   // skb programs without tot_len: the device's MTU
    }
    SECTION("the longest prefix wins; on-link destinations are their own next hop") {
        CHECK(f.run(v4(1, ip4(10, 1, 9, 9))).rc == BPF_FIB_LKUP_RET_SUCCESS);
        CHECK(f.out.ifindex == 4);
        CHECK(f.out.dmac[1] == 0xbb);
        CHECK(f.run(v4(1, ip4(10, 1, 9, 8))).rc == BPF_FIB_LKUP_RET_NO_NEIGH);
        CHECK(f.run(v4(1, ip4(10, 1, 2, 1))).rc == BPF_FIB_LKUP_RET_BLACKHOLE);
        CHECK(f.run(v4(1, ip4(10, 1, 3, 1))).rc == BPF_FIB_LKUP_RET_UNREACHABLE);
        CHECK(f.run(v4(1, ip4(10, 1, 4, 1))).rc == BPF_FIB_LKUP_RET_PROHIBIT);
    }
    SECTION("tot_len is checked against the MTU") {
        bpf_fib_lookup p = v4(1, ip4(8, 8, 8, 8));
        p.tot_len = 1501;
        CHECK(f.run(p).rc == BPF_FIB_LKUP_RET_FRAG_NEEDED);
        CHECK(f.out.mtu_result == 1500);
        p.tot_len = 1500;
        CHECK(f.run(p).rc == BPF_FIB_LKUP_RET_SUCCESS);
    }
    SECTION("a device that does not forward, and none") {
        f.l.w().devices[0].forwarding = false;
        CHECK(f.run(v4(1, ip4(8, 8, 8, 8))).rc == BPF_FIB_LKUP_RET_FWD_DISABLED);
        f.l.w().devices[0].forwarding = true;
        f.l.w().routes.clear();
        CHECK(f.run(v4(1, ip4(8, 8, 8, 8))).rc == BPF_FIB_LKUP_RET_NOT_FWDED);
    }
    SECTION("flags: skip the neighbour, a table of one's own, the source, the output device") {
        Fib skip(false, BPF_FIB_LOOKUP_SKIP_NEIGH);
        setup(skip.l.w());
        CHECK(skip.run(v4(1, ip4(10, 1, 9, 8))).rc == BPF_FIB_LKUP_RET_SUCCESS);
        CHECK(skip.out.dmac[1] == 0);
        Fib table(false, BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID);
        setup(table.l.w());
        bpf_fib_lookup p = v4(1, ip4(8, 8, 8, 8));
        p.tbid = 100;
        CHECK(table.run(p).rc == BPF_FIB_LKUP_RET_NO_NEIGH);   // 8.8.8.8 on-link on device 4
        CHECK(table.out.ifindex == 4);
        CHECK(table.out.rt_metric == 7);
        p.tbid = 101;
        CHECK(table.run(p).rc == BPF_FIB_LKUP_RET_NOT_FWDED);   // no such table
        Fib src(false, BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH);
        setup(src.l.w());
        CHECK(src.run(v4(1, ip4(10, 1, 7, 7))).rc == BPF_FIB_LKUP_RET_SUCCESS);
        CHECK(std::memcmp(&src.out.ipv4_src, ip4(10, 1, 0, 254).data(), 4) == 0);
        Fib output(false, BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SKIP_NEIGH);
        setup(output.l.w());
        output.l.w().devices[1].forwarding = true;
        // Leaving by device 3, 10.1.9.9 can only take the default route.
        CHECK(output.run(v4(3, ip4(10, 1, 9, 9))).rc == BPF_FIB_LKUP_RET_SUCCESS);
        CHECK(output.out.ifindex == 3);
    }
    SECTION("XDP always checks tot_len and reports the MTU it used") {
        Fib x(true, 0);
        setup(x.l.w());
        CHECK(x.run(v4(1, ip4(10, 1, 9, 9))).rc == BPF_FIB_LKUP_RET_SUCCESS);
        CHECK(x.out.mtu_result == 9000);
    }
}

TEST_CASE("bpf_fib_lookup over IPv6 routes", "[net][fib]") {
    Fib f(false, BPF_FIB_LOOKUP_SRC);
    World& w = f.l.w();
    w.devices[0].forwarding = true;
    w.devices.push_back(NetDevice{5, {0x02, 0, 0, 0, 0, 5}, 1500, false});
    Route r;
    r.family = 10;
    r.dst = {0x20, 0x01, 0x0d, 0xb8};
    r.prefix_len = 32;
    r.ifindex = 5;
    r.gateway = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    w.routes.push_back(r);
    w.neighbours.push_back(Neighbour{10, r.gateway, 5, {0x02, 0xcc, 0, 0, 0, 1}});
    bpf_fib_lookup p{};
    p.family = 10;
    p.ifindex = 1;
    std::memcpy(p.ipv6_dst, std::array<uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}.data(), 16);
    CHECK(f.run(p).rc == BPF_FIB_LKUP_RET_NO_SRC_ADDR);   // no preferred source, and devices have no addresses
    w.routes[0].prefsrc = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    CHECK(f.run(p).rc == BPF_FIB_LKUP_RET_SUCCESS);
    CHECK(std::memcmp(p.ipv6_dst, f.out.ipv6_dst, 16) != 0);
    CHECK(std::memcmp(f.out.ipv6_dst, r.gateway.data(), 16) == 0);
    CHECK(std::memcmp(f.out.ipv6_src, w.routes[0].prefsrc.data(), 16) == 0);
    CHECK(f.out.dmac[1] == 0xcc);
}

TEST_CASE("bpf_get_stackid files the world's stacks in the stack map", "[net][stack]") {
    const std::vector<MapSpec> maps = {{"stacks", 7, 4, 4 * 8, 4}, {"plain", 2, 4, 8, 1}};
    auto prog = [](int map, uint64_t flags) {
        return fmt::format("mov %r6, %r1\nlddw %r2, {}\nmov %r1, %r6\nmov %r3, {}\ncall {}\nexit\n", map_ref(map), flags,
                           int(BPF_FUNC_get_stackid));
    };
    auto l = load("tc", prog(0, 0), maps);
    const Bytes pkt = frame(0x0800, 40);
    CHECK(l.r0(pkt) == kEFAULT);   // no stack
    l.w().kernel_stack = {0x1000, 0x2000, 0x3000};
    const int64_t id = l.r0(pkt);
    REQUIRE(id >= 0);
    CHECK(l.r0(pkt) == id);   // the same stack, the same id
    Map* stacks = l.w().map("stacks");
    REQUIRE(stacks);
    uint64_t ips[4];
    const uint32_t key = static_cast<uint32_t>(id);
    REQUIRE(stacks->user_lookup(&key, ips) == 0);
    CHECK(ips[0] == 0x1000);
    CHECK(ips[2] == 0x3000);
    CHECK(ips[3] == 0);
    CHECK(load("tc", prog(0, 3), maps).r0(pkt) == kEFAULT);   // skipping every frame
    auto skip = load("tc", prog(0, 3), maps);
    skip.w().kernel_stack = {1, 2, 3, 4, 5};
    const int64_t id2 = skip.r0(pkt);
    REQUIRE(id2 >= 0);
    const uint32_t key2 = static_cast<uint32_t>(id2);
    REQUIRE(skip.w().map("stacks")->user_lookup(&key2, ips) == 0);
    CHECK(ips[0] == 4);
    CHECK(ips[1] == 5);
    CHECK(load("tc", prog(0, BPF_F_USER_STACK), maps).r0(pkt) == kEFAULT);   // no user stack
    CHECK(load("tc", prog(0, 1ull << 11), maps).r0(pkt) == kEINVAL);
    auto wrong = load("tc", prog(1, 0), maps);
    auto r = wrong.w().run_packet("prog", pkt);
    REQUIRE(r);
    REQUIRE(r->result.trap);
    CHECK_THAT(r->result.trap->message, Catch::Contains("not a stack_trace map"));
}

TEST_CASE("bpf_skb_adjust_room goes by skb->protocol and the base header sizes", "[net][skb]") {
    auto adjust = [](int64_t diff, int mode, uint64_t flags) {
        return fmt::format("mov %r6, %r1\n{}exit\n",
                           call(BPF_FUNC_skb_adjust_room, std::to_string(diff), std::to_string(mode), std::to_string(flags)));
    };
    Bytes ip = frame(0x0800, 60);
    ip[14] = 0x47;   // IPv4 with 8 bytes of options
    for (std::size_t i = 34; i < ip.size(); ++i) ip[i] = static_cast<uint8_t>(i);
    SECTION("BPF_ADJ_ROOM_NET inserts after 20 bytes of IPv4 header, whatever ihl says") {
        auto r = load("tc", adjust(8, BPF_ADJ_ROOM_NET, 0)).run(ip);
        CHECK(r.result.r0 == 0);
        REQUIRE(r.packet.size() == ip.size() + 8);
        CHECK(std::equal(ip.begin(), ip.begin() + 34, r.packet.begin()));
        CHECK(std::all_of(r.packet.begin() + 34, r.packet.begin() + 42, [](uint8_t b) { return b == 0; }));
        CHECK(std::equal(ip.begin() + 34, ip.end(), r.packet.begin() + 42));
    }
    SECTION("BPF_ADJ_ROOM_MAC inserts after the Ethernet header; shrinking removes from there") {
        auto r = load("tc", adjust(4, BPF_ADJ_ROOM_MAC, 0)).run(ip);
        CHECK(r.result.r0 == 0);
        CHECK(std::equal(ip.begin() + 14, ip.end(), r.packet.begin() + 18));
        auto s = load("tc", adjust(-8, BPF_ADJ_ROOM_NET, 0)).run(ip);
        CHECK(s.result.r0 == 0);
        CHECK(std::equal(ip.begin() + 42, ip.end(), s.packet.begin() + 34));
    }
    SECTION("room at the network header of a frame cut inside it: the packet grows by zeros") {
        // Found by `bpfsim fuzz` (cilium bpf_wireguard.o, a 21-byte frame): the tail to move
        // was computed from an offset past the end and the host crashed.
        const Bytes cut(ip.begin(), ip.begin() + 21);
        auto r = load("tc", adjust(8, BPF_ADJ_ROOM_NET, 0)).run(cut);
        CHECK(r.result.r0 == 0);
        REQUIRE(r.packet.size() == cut.size() + 8);
        CHECK(std::equal(cut.begin(), cut.end(), r.packet.begin()));
        CHECK(std::all_of(r.packet.begin() + 21, r.packet.end(), [](uint8_t b) { return b == 0; }));
    }
    SECTION("frames that are not IP are refused, VLAN-tagged ones included") {
        auto l = load("tc", adjust(28, BPF_ADJ_ROOM_MAC, 0));
        Bytes vlan = frame(0x8100, 60);
        vlan[16] = 0x08;   // the inner type: IPv4
        auto r = l.run(vlan);
        CHECK(static_cast<int64_t>(r.result.r0) == kENOTSUPP);
        CHECK(r.packet == vlan);
        CHECK(l.r0(frame(0x0806, 28)) == kENOTSUPP);
        CHECK(l.r0(frame(0x86dd, 60)) == 0);
    }
    SECTION("argument errors") {
        CHECK(load("tc", adjust(8, 2, 0)).r0(ip) == kENOTSUPP);
        CHECK(load("tc", adjust(8, BPF_ADJ_ROOM_NET, 1ull << 9)).r0(ip) == kEINVAL);
        CHECK(load("tc", adjust(0x1000, BPF_ADJ_ROOM_NET, 0)).r0(ip) == kEFAULT);
        CHECK(load("tc", adjust(-2000, BPF_ADJ_ROOM_NET, 0)).r0(ip) == kENOTSUPP);
        CHECK(load("tc", adjust(8, BPF_ADJ_ROOM_NET, 1ull << 7)).r0(ip) == kEINVAL);   // decap flags only shrink
    }
    SECTION("encapsulation: once, switching skb->protocol; then the tail stays") {
        const uint64_t v6_udp = (1 << 2) | (1 << 4);   // BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | _L4_UDP
        const std::string first = "mov %r6, %r1\n" + call(BPF_FUNC_skb_adjust_room, "48", "1", std::to_string(v6_udp)) + "jne %r0, 0, +1\n";
        CHECK(load("tc", first + "ldxw %r0, [%r6+16]\nexit\n").r0(ip) == __builtin_bswap16(0x86dd));
        CHECK(load("tc", first + call(BPF_FUNC_skb_adjust_room, "20", "1", "2") + "exit\n").r0(ip) == kEALREADY);
        CHECK(load("tc", first + call(BPF_FUNC_skb_change_tail, "100", "0") + "exit\n").r0(ip) == kENOTSUPP);
    }
}

TEST_CASE("bpf_skb_change_head grows past the headroom and moves the MAC header", "[net][skb]") {
    const std::string prog = "mov %r6, %r1\n" + call(BPF_FUNC_skb_change_head, "300", "0") + "jne %r0, 0, +8\n" +
                             call(BPF_FUNC_skb_adjust_room, "8", std::to_string(BPF_ADJ_ROOM_NET), "0") + "jne %r0, 0, +1\n" +
                             call(BPF_FUNC_skb_change_tail, "313", "0") + "exit\n";
    Bytes ip = frame(0x0800, 60);
    for (std::size_t i = 14; i < ip.size(); ++i) ip[i] = static_cast<uint8_t>(i);
    auto l = load("tc", prog);
    const ProgramRun r = l.run(ip);
    // The network header is now 314 bytes in: change_tail may not cut into it.
    CHECK(static_cast<int64_t>(r.result.r0) == kEINVAL);
    REQUIRE(r.packet.size() == 300 + ip.size() + 8);
    CHECK(std::all_of(r.packet.begin(), r.packet.begin() + 300, [](uint8_t b) { return b == 0; }));
    CHECK(std::equal(ip.begin(), ip.begin() + 34, r.packet.begin() + 300));
    CHECK(std::all_of(r.packet.begin() + 334, r.packet.begin() + 342, [](uint8_t b) { return b == 0; }));
    CHECK(std::equal(ip.begin() + 34, ip.end(), r.packet.begin() + 342));
    CHECK(load("tc", "mov %r6, %r1\n" + call(BPF_FUNC_skb_change_head, "16064", "0") + "exit\n").r0(ip) == kEINVAL);   // over 16064 bytes
}

// For scenario tests (tests/test_scenario.cpp): maps whose keys and values are structs with
// nested structs, arrays, char arrays and enums, and records of a struct type that .BTF keeps.
//
// count (raw_tp; args: saddr, port, bytes): counters[{saddr, port}] counts packets and bytes
//   (a new entry is named "new", kind KIND_OPEN; an existing one becomes KIND_EXEC and records
//   the port's low byte in hist[1]); every run adds 1 to pcpu[0], writes one struct event
//   (pid, comm, kind) to the ring buffer `events` and the same to the perf event array `pe`.
//   Returns the entry's packet count.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum kind { KIND_OPEN = 1, KIND_EXEC = 2, KIND_EXIT = 3 };

struct key {
    __u32 saddr;
    __u16 port;
    __u16 pad;
};

struct peer {
    __u8 octets[4];
    __u16 port;
};

struct stats {
    __u64 packets;
    __u64 bytes;
    char name[8];
    enum kind last;
    struct peer peer;
    __u32 hist[2];
};

struct event {
    __u32 pid;
    char comm[16];
    enum kind kind;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, struct key);
    __type(value, struct stats);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} pcpu SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u32);
} pe SEC(".maps");

// Keeps struct event in .BTF (locals' types are not emitted), as libbpf-bootstrap does.
const struct event *unused_event __attribute__((unused));

SEC("raw_tp/sys_enter")
int count(struct bpf_raw_tracepoint_args *ctx)
{
    struct key k = {.saddr = (__u32)ctx->args[0], .port = (__u16)ctx->args[1]};
    struct stats *s = bpf_map_lookup_elem(&counters, &k);
    __u64 packets;

    if (s) {
        s->packets += 1;
        s->bytes += ctx->args[2];
        s->last = KIND_EXEC;
        s->hist[1] = k.port & 0xff;
        packets = s->packets;
    } else {
        struct stats n = {.packets = 1, .bytes = ctx->args[2], .name = "new", .last = KIND_OPEN};
        bpf_map_update_elem(&counters, &k, &n, BPF_NOEXIST);
        packets = 1;
    }

    __u32 zero = 0;
    __u64 *c = bpf_map_lookup_elem(&pcpu, &zero);
    if (c)
        *c += 1;

    struct event e = {.pid = bpf_get_current_pid_tgid() >> 32, .kind = KIND_EXEC};
    bpf_get_current_comm(e.comm, sizeof(e.comm));
    bpf_ringbuf_output(&events, &e, sizeof(e), 0);
    bpf_perf_event_output(ctx, &pe, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return (int)packets;
}

char LICENSE[] SEC("license") = "GPL";

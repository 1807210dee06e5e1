// Tracing helpers, run by bpfsim with raw context bytes (the kernel differential test
// does not run tracing programs).
//
// ids (raw_tp; res 0..15): who and when: pid/tgid, uid/gid, comm (whole and cut to 8
//   bytes, copied to `comms`), the current task (and a read through it), the three clocks,
//   two random numbers and the CPU.
// reads (kprobe; res 16..30): bpf_probe_read_kernel/_user/_str and the legacy bpf_probe_read
//   from the context and .rodata (kernel memory), from user memory the test provides, from a
//   bad pointer, and each space through the other's helper; strings go to `strs`.
// kp_misc (kprobe; res 32..39): bpf_get_stack (kernel and user stacks, skipped frames, flag
//   and size checks), bpf_override_return.
// tp_printk (tracepoint; res 40..49): bpf_printk with every conversion the issue lists,
//   bpf_trace_printk directly, and a format the kernel refuses.
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __s64);
} res SEC(".maps");

struct comm {
    char full[16];
    char cut[8];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct comm);
} comms SEC(".maps");

struct strs {
    char kernel[32];
    char cut[8];
    char bad[8];
    char user[32];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct strs);
} strs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64[4]);
} frames SEC(".maps");

static __always_inline void put(__u32 slot, __s64 v)
{
    bpf_map_update_elem(&res, &slot, &v, BPF_ANY);
}

SEC("raw_tp/sys_enter")
int ids(struct bpf_raw_tracepoint_args *ctx)
{
    struct comm c = {};
    __u32 zero = 0;

    put(0, bpf_get_current_pid_tgid());
    put(1, bpf_get_current_uid_gid());
    put(2, bpf_get_current_comm(c.full, sizeof(c.full)));
    put(3, bpf_get_current_comm(c.cut, sizeof(c.cut)));
    bpf_map_update_elem(&comms, &zero, &c, BPF_ANY);

    __u64 task = bpf_get_current_task();
    put(4, task != 0);
    __u32 word = 0xffffffff;
    put(5, bpf_probe_read_kernel(&word, sizeof(word), (void *)(task + 16)));
    put(6, word);

    put(7, bpf_ktime_get_ns());
    put(8, bpf_ktime_get_boot_ns());
    put(9, bpf_ktime_get_coarse_ns());
    put(10, bpf_get_prandom_u32());
    put(11, bpf_get_prandom_u32());
    put(12, bpf_get_smp_processor_id());
    return 0;
}

static const char greeting[] = "hello, kernel";

/* regs->di: a bad pointer; regs->dx: a string in user memory; regs->cx: 8 bytes of user
 * memory. The program's own .rodata and its context are kernel memory. */
SEC("kprobe/do_sys_openat2")
int reads(struct pt_regs *ctx)
{
    struct strs s = {};
    __u32 zero = 0;
    __u64 v = 0, u = 0x1111111111111111ull;
    char k[8];

    put(16, bpf_probe_read_kernel(&v, sizeof(v), &ctx->rsi));
    put(17, v);
    put(18, bpf_probe_read_user(&u, sizeof(u), (void *)ctx->rdi));   /* -EFAULT, zero-filled */
    put(19, u);
    put(20, bpf_probe_read_kernel_str(s.kernel, sizeof(s.kernel), greeting));
    put(21, bpf_probe_read_user_str(s.cut, sizeof(s.cut), (void *)ctx->rdx));   /* cut short */
    __builtin_memset(s.bad, 'x', sizeof(s.bad));
    put(22, bpf_probe_read_kernel_str(s.bad, sizeof(s.bad), (void *)ctx->rdi)); /* -EFAULT */
    put(23, bpf_probe_read_user_str(s.user, sizeof(s.user), (void *)ctx->rdx));
    put(24, bpf_probe_read_user(&v, sizeof(v), (void *)ctx->rcx));
    put(25, v);
    v = 0;
    put(26, bpf_probe_read(&v, 4, &ctx->rsi));                        /* legacy: either space */
    put(27, v);
    put(28, bpf_probe_read_kernel(&v, 0, (void *)ctx->rdi));          /* nothing to read: 0 */
    put(29, bpf_probe_read_user(&v, sizeof(v), greeting));            /* -EFAULT: kernel memory */
    put(30, bpf_probe_read_kernel_str(k, sizeof(k), (void *)ctx->rdx));   /* -EFAULT: user memory */
    bpf_map_update_elem(&strs, &zero, &s, BPF_ANY);
    return 0;
}

SEC("kprobe/should_fail_bio")
int kp_misc(struct pt_regs *ctx)
{
    __u64 stack[4];
    __u32 zero = 0;

    __builtin_memset(stack, 0xff, sizeof(stack));
    put(32, bpf_get_stack(ctx, stack, sizeof(stack), 1));            /* kernel stack, 1 frame skipped */
    bpf_map_update_elem(&frames, &zero, stack, BPF_ANY);
    put(33, bpf_get_stack(ctx, stack, sizeof(stack), BPF_F_USER_STACK | 2));
    put(34, bpf_get_stack(ctx, stack, 20, 0));                       /* -EINVAL: not whole frames */
    put(35, stack[0]);                                               /* zeroed on the error */
    put(36, bpf_get_stack(ctx, stack, sizeof(stack), 1 << 12));      /* -EINVAL: unknown flag */
    put(37, bpf_get_stack(ctx, stack, sizeof(stack), BPF_F_USER_BUILD_ID));   /* -EINVAL: kernel stack */
    put(38, bpf_get_stack(ctx, stack, sizeof(stack), 9));            /* skips more frames than there are */
    put(39, bpf_override_return(ctx, -12));
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_printk(void *ctx)
{
    __u32 addr4 = bpf_htonl(0xc0a80001);   /* 192.168.0.1 */
    __u8 addr6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
    static const char who[] = "tracer";

    put(40, bpf_printk("d=%d i=%i u=%u", -5, 42, 3000000000u));
    put(41, bpf_printk("x=%x ld=%ld lld=%lld", 0xbeef, -7L, -8LL));
    put(42, bpf_printk("llu=%llu llx=%llx", 18446744073709551615ull, 0x1122334455667788ull));
    put(43, bpf_printk("p=%p c=%c%c", (void *)0xdead, 'o', 'k'));
    put(44, bpf_printk("ip4=%pI4 ip6=%pI6", &addr4, addr6));
    put(45, bpf_printk("s=%s", who));
    put(46, bpf_printk("five %d %d %d %d %d", 1, 2, 3, 4, 5));
    char fmt[] = "raw %d\n";
    put(47, bpf_trace_printk(fmt, sizeof(fmt), 99));
    char bad[] = "bad %f";
    put(48, bpf_trace_printk(bad, sizeof(bad), 1));                  /* -EINVAL */
    put(49, bpf_printk("i6=%pi6 i4=%pi4", addr6, &addr4));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";

# Compiles corpus/*.c to BPF objects with clang -target bpf.
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)

set(BPFSIM_CORPUS_DIR ${CMAKE_BINARY_DIR}/corpus)
# asm/types.h and friends live under the multiarch include directory.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch OUTPUT_VARIABLE BPF_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE)
file(MAKE_DIRECTORY ${BPFSIM_CORPUS_DIR})

function(bpfsim_bpf_object name src)
  set(out ${BPFSIM_CORPUS_DIR}/${name}.o)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -I/usr/include/${BPF_MULTIARCH} -Wall -Werror -c ${CMAKE_SOURCE_DIR}/${src} -o ${out}
    DEPENDS ${CMAKE_SOURCE_DIR}/${src}
    COMMENT "BPF ${src}"
    VERBATIM)
  set_property(GLOBAL APPEND PROPERTY BPFSIM_BPF_OBJECTS ${out})
endfunction()

bpfsim_bpf_object(bench_kernels corpus/bench/kernels.c)
bpfsim_bpf_object(xdp_counter corpus/net/xdp_counter.c)
bpfsim_bpf_object(tc_rewrite corpus/net/tc_rewrite.c)
bpfsim_bpf_object(socket_ldabs corpus/net/socket_ldabs.c)
bpfsim_bpf_object(xdp_features corpus/net/xdp_features.c)
bpfsim_bpf_object(trace_contexts corpus/trace/contexts.c)
bpfsim_bpf_object(trace_exec corpus/demo/trace_exec.c)
# Kernel BTFs for scenarios: this machine's kernel, recorded (xz), and a made-up older layout
# of task_struct (clang's .BTF of a C file) for the CO-RE portability test.
bpfsim_bpf_object(old_task_struct corpus/btf/old_task_struct.c)
set(_vmlinux_btf ${BPFSIM_CORPUS_DIR}/vmlinux-6.18.44.btf)
add_custom_command(
  OUTPUT ${_vmlinux_btf}
  COMMAND xz -dc ${CMAKE_SOURCE_DIR}/corpus/btf/vmlinux-6.18.44.btf.xz > ${_vmlinux_btf}
  DEPENDS ${CMAKE_SOURCE_DIR}/corpus/btf/vmlinux-6.18.44.btf.xz
  COMMENT "BTF corpus/btf/vmlinux-6.18.44.btf.xz"
  VERBATIM)
set_property(GLOBAL APPEND PROPERTY BPFSIM_BPF_OBJECTS ${_vmlinux_btf})
# Every map type and helper the issue lists, one object per group (tests/test_features.cpp).
bpfsim_bpf_object(feat_maps_basic corpus/features/maps_basic.c)
bpfsim_bpf_object(feat_maps_lru corpus/features/maps_lru.c)
bpfsim_bpf_object(feat_maps_in_maps corpus/features/maps_in_maps.c)
bpfsim_bpf_object(feat_maps_queue_stack_bloom_lpm corpus/features/maps_queue_stack_bloom_lpm.c)
bpfsim_bpf_object(feat_tail_calls corpus/features/tail_calls.c)
bpfsim_bpf_object(feat_ringbuf_perf corpus/features/ringbuf_perf.c)
bpfsim_bpf_object(feat_helpers_net corpus/features/helpers_net.c)
bpfsim_bpf_object(feat_helpers_skb corpus/features/helpers_skb.c)
bpfsim_bpf_object(feat_helpers_tracing corpus/features/helpers_tracing.c)
bpfsim_bpf_object(feat_helpers_misc corpus/features/helpers_misc.c)
# Struct keys, values and records for scenario expectations (tests/test_scenario.cpp).
bpfsim_bpf_object(feat_scenario_maps corpus/features/scenario_maps.c)
# CO-RE relocations of every kind, checked against libbpf by tests/core_diff.cpp.
bpfsim_bpf_object(core_task corpus/core/task.c)
bpfsim_bpf_object(core_bitfields corpus/core/bitfields.c)
bpfsim_bpf_object(core_enums corpus/core/enums.c)
bpfsim_bpf_object(core_ambiguity corpus/core/ambiguity.c)
bpfsim_bpf_object(core_matches corpus/core/matches.c)

# The example suite: realistic programs with scenarios (corpus/examples/*.yaml, ctest corpus-examples).
bpfsim_bpf_object(xdp_firewall corpus/examples/xdp_firewall.c)
bpfsim_bpf_object(tc_ratelimit corpus/examples/tc_ratelimit.c)
bpfsim_bpf_object(proc_tracker corpus/examples/proc_tracker.c)
bpfsim_bpf_object(sock_filter corpus/examples/sock_filter.c)
# Kernel selftest annotations (bpf_misc.h tags) for `bpfsim test OBJ` (tests/test_annotations.cpp).
bpfsim_bpf_object(feat_annotations corpus/features/annotations.c)
bpfsim_bpf_object(kernel_reject corpus/verifier/kernel_reject.c)   # kernel-verify's known rejection
# `bpfsim fuzz`: a planted bug only a specific multi-byte input reaches (tests/fuzz_cli.sh).
bpfsim_bpf_object(fuzz_telemetry corpus/fuzz/telemetry.c)
bpfsim_bpf_object(fuzz_oob corpus/fuzz/oob.c)   # rejected by the verifier: fuzzed with --no-verify

get_property(_objs GLOBAL PROPERTY BPFSIM_BPF_OBJECTS)
add_custom_target(bpf_corpus ALL DEPENDS ${_objs})

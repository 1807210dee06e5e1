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

get_property(_objs GLOBAL PROPERTY BPFSIM_BPF_OBJECTS)
add_custom_target(bpf_corpus ALL DEPENDS ${_objs})

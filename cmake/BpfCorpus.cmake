# Compiles corpus/*.c to BPF objects with clang -target bpf.
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)

set(BPFSIM_CORPUS_DIR ${CMAKE_BINARY_DIR}/corpus)
file(MAKE_DIRECTORY ${BPFSIM_CORPUS_DIR})

function(bpfsim_bpf_object name src)
  set(out ${BPFSIM_CORPUS_DIR}/${name}.o)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -Wall -Werror -c ${CMAKE_SOURCE_DIR}/${src} -o ${out}
    DEPENDS ${CMAKE_SOURCE_DIR}/${src}
    COMMENT "BPF ${src}"
    VERBATIM)
  set_property(GLOBAL APPEND PROPERTY BPFSIM_BPF_OBJECTS ${out})
endfunction()

bpfsim_bpf_object(bench_kernels corpus/bench/kernels.c)

get_property(_objs GLOBAL PROPERTY BPFSIM_BPF_OBJECTS)
add_custom_target(bpf_corpus ALL DEPENDS ${_objs})

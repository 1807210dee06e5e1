// core_oracle: libbpf's CO-RE relocation decisions for one BPF object, as an oracle for
// bpfsim's btf::core_relocate (tests/core_diff.cpp compares the two).
//
//   core_oracle OBJ TARGET_BTF [PROG | --list]
//
// Opens OBJ with btf_custom_path = TARGET_BTF, so libbpf relocates against that BTF and
// nothing else, and calls bpf_object__load. CO-RE relocation runs early in the load
// (before any program is loaded), so a load that fails later still shows every relocation
// decision. Maps are not created (bpf_map__set_autocreate): they play no part in CO-RE,
// and a map the kernel refuses would stop the load before it. With PROG, every other
// program gets autoload off and libbpf skips its relocations: one failing relocation then
// hides only the rest of its own program. --list only lists the programs.
//
// Output: "prog NAME SECTION" for each entry program, then "log LINE" for each libbpf
// debug line about sections and relocations, then "load RC". Exit 0 when the object
// opened, 2 when libbpf could not open it, 77 when bpf() is not permitted (the load never
// reached CO-RE).
#include <bpf/libbpf.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reached_core;   // a relocation line was seen
static int eperm;          // the load was refused for lack of permission

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    char buf[4096];
    (void)level;
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n') buf[--n] = 0;
    const char *line = strncmp(buf, "libbpf: ", 8) == 0 ? buf + 8 : buf;
    // ELF relocations ("sec '.relxdp': relo #0: insn #7 against 'map'", "poisoning insn #7
    // that loads map #0") are not CO-RE.
    const int elf_relo = strncmp(line, "sec '.rel", 9) == 0 || strstr(line, "that loads map");
    if (!elf_relo && (strstr(line, "relo #") || strstr(line, "CO-RE"))) {
        reached_core = 1;
        printf("log %s\n", line);
    } else if (strstr(line, "Operation not permitted") || strstr(line, "-EPERM")) {
        eperm = 1;
        printf("other %s\n", line);
    } else if (getenv("CORE_ORACLE_ALL")) {
        printf("other %s\n", line);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: core_oracle OBJ TARGET_BTF [PROG]\n");
        return 2;
    }
    libbpf_set_print(print_fn);
    LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = argv[2]);
    struct bpf_object *obj = bpf_object__open_file(argv[1], &opts);
    if (!obj) {
        printf("open %d\n", -errno);
        return 2;
    }
    const int list_only = argc == 4 && strcmp(argv[3], "--list") == 0;
    struct bpf_program *prog;
    int found = argc < 4 || list_only;
    bpf_object__for_each_program(prog, obj) {
        printf("prog %s %s\n", bpf_program__name(prog), bpf_program__section_name(prog));
        if (argc == 4 && !list_only) {
            const int mine = strcmp(bpf_program__name(prog), argv[3]) == 0;
            found |= mine;
            bpf_program__set_autoload(prog, mine);
        }
    }
    if (!found) {
        fprintf(stderr, "core_oracle: no program '%s'\n", argv[3]);
        bpf_object__close(obj);
        return 2;
    }
    if (list_only) {
        bpf_object__close(obj);
        return 0;
    }
    // Maps are not needed for CO-RE and may fail to be created here (memory limits, map
    // types the kernel lacks), which would stop the load before relocation.
    struct bpf_map *map;
    bpf_object__for_each_map(map, obj) bpf_map__set_autocreate(map, false);
    fflush(stdout);
    const int rc = bpf_object__load(obj);
    printf("load %d\n", rc);
    bpf_object__close(obj);
    if (!reached_core && eperm) return 77;
    return 0;
}

#!/usr/bin/env python3
"""Makes split BTF out of raw BTF, for testing `btf dump --base` where no module BTF exists.

usage: btf_split.py IN.btf K BASE.btf SPLIT.btf

BASE gets the types the first K-1 ids need (their closure), SPLIT the others, both in their
original order and renumbered, as a module's BTF sits on vmlinux: split types refer to base
types, never the other way. BASE keeps the strings its types use; SPLIT's strings continue
after them.
"""
import struct
import sys

HDR = '<HBBIIIII'
# trailer bytes per kind (vlen-scaled where it applies)
FIXED = {1: 4, 3: 12, 14: 4, 17: 4}
PER_VLEN = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
REFERRING = {2, 8, 9, 10, 11, 12, 13, 14, 17, 18}   # kinds whose third word is a type id


def parse(data):
    magic, _ver, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(HDR, data, 0)
    if magic != 0xeb9f:
        sys.exit('not little-endian raw BTF')
    tb = data[hdr_len + type_off: hdr_len + type_off + type_len]
    sb = data[hdr_len + str_off: hdr_len + str_off + str_len]
    types = [None]
    off = 0
    while off < len(tb):
        name_off, info, st = struct.unpack_from('<III', tb, off)
        kind, vlen = (info >> 24) & 0x1f, info & 0xffff
        extra = FIXED.get(kind, 0) + PER_VLEN.get(kind, 0) * vlen
        types.append([name_off, info, st, bytearray(tb[off + 12: off + 12 + extra])])
        off += 12 + extra
    return types, sb


def kind_vlen(t):
    return (t[1] >> 24) & 0x1f, t[1] & 0xffff


def type_slots(t):
    """Where a record holds type ids: 'st' (third word) or a trailer byte offset."""
    kind, vlen = kind_vlen(t)
    slots = ['st'] if kind in REFERRING else []
    if kind == 3:
        slots += [0, 4]
    elif kind in (4, 5):
        slots += [12 * i + 4 for i in range(vlen)]
    elif kind == 13:
        slots += [8 * i + 4 for i in range(vlen)]
    elif kind == 15:
        slots += [12 * i for i in range(vlen)]
    return slots


def name_slots(t):
    kind, vlen = kind_vlen(t)
    step = {4: 12, 5: 12, 6: 8, 19: 12, 13: 8}.get(kind)
    return ['name'] + ([step * i for i in range(vlen)] if step else [])


def get(t, slot, head):
    return t[head] if slot in ('st', 'name') else struct.unpack_from('<I', t[3], slot)[0]


def put(t, slot, head, v):
    if slot in ('st', 'name'):
        t[head] = v
    else:
        struct.pack_into('<I', t[3], slot, v)


def write(types, strs):
    tb = b''.join(struct.pack('<III', t[0], t[1], t[2]) + bytes(t[3]) for t in types)
    return struct.pack(HDR, 0xeb9f, 1, 0, 24, 0, len(tb), len(tb), len(strs)) + tb + strs


def main():
    src, k, base_out, split_out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    types, sb = parse(open(src, 'rb').read())
    n = len(types)
    in_base = [False] * n
    in_base[0] = True
    stack = list(range(1, min(k, n)))
    while stack:
        i = stack.pop()
        if in_base[i]:
            continue
        in_base[i] = True
        stack += [get(types[i], s, 2) for s in type_slots(types[i])]
    base_ids = [i for i in range(1, n) if in_base[i]]
    split_ids = [i for i in range(1, n) if not in_base[i]]
    new_id = {0: 0}
    for j, i in enumerate(base_ids + split_ids):
        new_id[i] = j + 1
    for t in types[1:]:
        for s in type_slots(t):
            put(t, s, 2, new_id[get(t, s, 2)])

    def cstr(off):
        return sb[off: sb.index(b'\0', off)]

    base_strs, base_map = bytearray(b'\0'), {b'': 0}
    for i in base_ids:
        for s in name_slots(types[i]):
            text = cstr(get(types[i], s, 0))
            if text not in base_map:
                base_map[text] = len(base_strs)
                base_strs += text + b'\0'
            put(types[i], s, 0, base_map[text])
    split_strs, split_map = bytearray(), {}
    for i in split_ids:
        for s in name_slots(types[i]):
            text = cstr(get(types[i], s, 0))
            if text in base_map:
                off = base_map[text]
            else:
                if text not in split_map:
                    split_map[text] = len(base_strs) + len(split_strs)
                    split_strs += text + b'\0'
                off = split_map[text]
            put(types[i], s, 0, off)
    open(base_out, 'wb').write(write([types[i] for i in base_ids], bytes(base_strs)))
    open(split_out, 'wb').write(write([types[i] for i in split_ids], bytes(split_strs)))
    print(f'{src}: base {len(base_ids)} types, split {len(split_ids)} types')


if __name__ == '__main__':
    main()

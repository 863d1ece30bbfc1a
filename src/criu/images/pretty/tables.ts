/**
 * The flag and value tables of pycriu's pb2dict.py that `(criu).flags` and `(criu).dict` name.
 * They are Python code, not descriptor data, so they are mirrored here (CRIU 4.2.1).
 */

export type FlagTable = readonly (readonly [name: string, bit: bigint])[];

const mmapProt: FlagTable = [
  ['PROT_READ', 0x1n],
  ['PROT_WRITE', 0x2n],
  ['PROT_EXEC', 0x4n],
];

const mmapFlags: FlagTable = [
  ['MAP_SHARED', 0x1n],
  ['MAP_PRIVATE', 0x2n],
  ['MAP_DROPPABLE', 0x08n],
  ['MAP_ANON', 0x20n],
  ['MAP_GROWSDOWN', 0x0100n],
];

const mmapStatus: FlagTable = [
  ['VMA_AREA_NONE', 0n],
  ['VMA_AREA_REGULAR', 1n << 0n],
  ['VMA_AREA_STACK', 1n << 1n],
  ['VMA_AREA_VSYSCALL', 1n << 2n],
  ['VMA_AREA_VDSO', 1n << 3n],
  ['VMA_AREA_HEAP', 1n << 5n],
  ['VMA_FILE_PRIVATE', 1n << 6n],
  ['VMA_FILE_SHARED', 1n << 7n],
  ['VMA_ANON_SHARED', 1n << 8n],
  ['VMA_ANON_PRIVATE', 1n << 9n],
  ['VMA_AREA_SYSVIPC', 1n << 10n],
  ['VMA_AREA_SOCKET', 1n << 11n],
  ['VMA_AREA_VVAR', 1n << 12n],
  ['VMA_AREA_AIORING', 1n << 13n],
  ['VMA_AREA_MEMFD', 1n << 14n],
  ['VMA_AREA_SHSTK', 1n << 15n],
  ['VMA_AREA_UPROBES', 1n << 17n],
  ['VMA_UNSUPP', 1n << 31n],
];

const rfileFlags: FlagTable = [
  ['O_WRONLY', 0o00000001n],
  ['O_RDWR', 0o00000002n],
  ['O_CREAT', 0o00000100n],
  ['O_EXCL', 0o00000200n],
  ['O_NOCTTY', 0o00000400n],
  ['O_TRUNC', 0o00001000n],
  ['O_APPEND', 0o00002000n],
  ['O_NONBLOCK', 0o00004000n],
  ['O_DSYNC', 0o00010000n],
  ['FASYNC', 0o00020000n],
  ['O_DIRECT', 0o00040000n],
  ['O_LARGEFILE', 0o00100000n],
  ['O_DIRECTORY', 0o00200000n],
  ['O_NOFOLLOW', 0o00400000n],
  ['O_NOATIME', 0o01000000n],
  ['O_CLOEXEC', 0o02000000n],
];

const sealsFlags: FlagTable = [
  ['F_SEAL_SEAL', 0x0001n],
  ['F_SEAL_SHRINK', 0x0002n],
  ['F_SEAL_GROW', 0x0004n],
  ['F_SEAL_WRITE', 0x0008n],
  ['F_SEAL_FUTURE_WRITE', 0x0010n],
];

const pmapFlags: FlagTable = [
  ['PE_PARENT', 1n << 0n],
  ['PE_LAZY', 1n << 1n],
  ['PE_PRESENT', 1n << 2n],
];

export const flagTables: ReadonlyMap<string, FlagTable> = new Map([
  ['mmap.prot', mmapProt],
  ['mmap.flags', mmapFlags],
  ['mmap.status', mmapStatus],
  ['rfile.flags', rfileFlags],
  ['pmap.flags', pmapFlags],
  ['seals.flags', sealsFlags],
]);

type ValueTable = ReadonlyMap<number, string>;

/** dict name -> field name -> value -> text. */
export const dictTables: ReadonlyMap<string, ReadonlyMap<string, ValueTable>> = new Map([
  [
    'gen',
    new Map([
      [
        'task_state',
        new Map([
          [1, 'Alive'],
          [3, 'Zombie'],
          [6, 'Stopped'],
        ]),
      ],
    ]),
  ],
  [
    'sk',
    new Map([
      [
        'family',
        new Map([
          [1, 'UNIX'],
          [2, 'INET'],
          [10, 'INET6'],
          [16, 'NETLINK'],
          [17, 'PACKET'],
        ]),
      ],
      [
        'type',
        new Map([
          [1, 'STREAM'],
          [2, 'DGRAM'],
          [3, 'RAW'],
          [5, 'SEQPACKET'],
          [10, 'PACKET'],
        ]),
      ],
      [
        'state',
        new Map([
          [1, 'ESTABLISHED'],
          [2, 'SYN_SENT'],
          [3, 'SYN_RECV'],
          [4, 'FIN_WAIT1'],
          [5, 'FIN_WAIT2'],
          [6, 'TIME_WAIT'],
          [7, 'CLOSE'],
          [8, 'CLOSE_WAIT'],
          [9, 'LAST_ACK'],
          [10, 'LISTEN'],
        ]),
      ],
      [
        'proto',
        new Map([
          [0, 'IP'],
          [6, 'TCP'],
          [17, 'UDP'],
          [136, 'UDPLITE'],
        ]),
      ],
    ]),
  ],
]);

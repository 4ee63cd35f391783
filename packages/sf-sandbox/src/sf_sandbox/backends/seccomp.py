"""The seccomp profile every sandbox container runs under (ours, authored here; see the README).

An allowlist: the system calls an evaluation job (an interpreter, its threads and subprocesses,
files in its work dir, pipes, sockets on loopback, SysV/POSIX IPC) and the supervisor need.
Anything else fails with ``ENOSYS``, so a C library falls back as it does on an older kernel
(``clone3`` → ``clone``). A few calls are denied by name with ``EPERM`` because they are the
kernel surface a job must never reach (io_uring first: Docker 20.10's default profile allows it
and it has been a frequent source of local privilege escalations).

System-call names the engine's libseccomp does not know are skipped by runc, so one profile
serves every kernel and architecture; only the engine's native ABI is allowed (32-bit and x32
calls on x86_64 do not match the filter and the process is killed).
"""

from __future__ import annotations

import errno
import json
from functools import cache
from typing import Any

CLONE_NAMESPACE_FLAGS = 0x7E020000
"""CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: clone may not set any."""

PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
"""PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE variants, and the query value: nothing else."""

ALLOWED = (
    # processes, threads, signals
    "arch_prctl capget capset exit exit_group fork vfork execve execveat getpid getppid gettid "
    "getpgid getpgrp getsid setpgid setsid wait4 waitid waitpid kill tkill tgkill pidfd_open "
    "pidfd_send_signal rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn "
    "rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack sigreturn "
    "sigprocmask pause restart_syscall set_tid_address set_robust_list get_robust_list rseq prctl "
    "get_thread_area set_thread_area set_tls seccomp futex futex_time64 futex_waitv membarrier "
    "sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam "
    "sched_setparam sched_getscheduler sched_setscheduler sched_get_priority_max "
    "sched_get_priority_min sched_rr_get_interval sched_rr_get_interval_time64 getpriority "
    "setpriority ioprio_get ioprio_set getcpu getrlimit setrlimit ugetrlimit prlimit64 getrusage "
    "times sysinfo uname umask "
    # credentials (a job has no capabilities: it can only drop what it has)
    "getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32 getresuid getresuid32 "
    "getresgid getresgid32 getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid "
    "setreuid32 setregid setregid32 setresuid setresuid32 setresgid setresgid32 setgroups "
    "setgroups32 setfsuid setfsuid32 setfsgid setfsgid32 "
    # memory
    "brk mmap mmap2 munmap mremap mprotect pkey_mprotect pkey_alloc pkey_free madvise mincore "
    "msync mlock mlock2 munlock mlockall munlockall remap_file_pages memfd_create mseal "
    "map_shadow_stack cacheflush riscv_flush_icache "
    # files and directories
    "read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2 open openat openat2 "
    "creat close close_range lseek _llseek dup dup2 dup3 fcntl fcntl64 flock fsync fdatasync sync "
    "syncfs sync_file_range fadvise64 fadvise64_64 readahead fallocate truncate truncate64 "
    "ftruncate ftruncate64 stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx "
    "statfs statfs64 fstatfs fstatfs64 access faccessat faccessat2 getcwd chdir fchdir mkdir mkdirat "
    "rmdir unlink unlinkat rename renameat renameat2 link linkat symlink symlinkat readlink "
    "readlinkat chmod fchmod fchmodat fchmodat2 chown chown32 fchown fchown32 lchown lchown32 "
    "fchownat mknod mknodat utime utimes futimesat utimensat utimensat_time64 getdents getdents64 "
    "getxattr lgetxattr fgetxattr getxattrat setxattr lsetxattr fsetxattr setxattrat listxattr "
    "llistxattr flistxattr listxattrat removexattr lremovexattr fremovexattr removexattrat "
    "copy_file_range sendfile sendfile64 splice tee vmsplice ioctl cachestat "
    "inotify_init inotify_init1 inotify_add_watch inotify_rm_watch "
    # waiting, events, timers
    "poll ppoll ppoll_time64 select _newselect pselect6 pselect6_time64 epoll_create epoll_create1 "
    "epoll_ctl epoll_wait epoll_pwait epoll_pwait2 eventfd eventfd2 signalfd signalfd4 "
    "timerfd_create timerfd_settime timerfd_settime64 timerfd_gettime timerfd_gettime64 "
    "timer_create timer_settime timer_settime64 timer_gettime timer_gettime64 timer_getoverrun "
    "timer_delete alarm getitimer setitimer nanosleep clock_nanosleep clock_nanosleep_time64 "
    "clock_gettime clock_gettime64 clock_getres clock_getres_time64 gettimeofday time "
    "getrandom "
    # pipes, sockets (the network is none: loopback only), IPC
    "pipe pipe2 socket socketpair bind listen accept accept4 connect shutdown getsockname "
    "getpeername getsockopt setsockopt send sendto sendmsg sendmmsg recv recvfrom recvmsg "
    "recvmmsg recvmmsg_time64 socketcall shmget shmat shmdt shmctl semget semop semtimedop "
    "semtimedop_time64 semctl msgget msgsnd msgrcv msgctl ipc mq_open mq_unlink mq_timedsend "
    "mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64 mq_notify mq_getsetattr "
    # legacy asynchronous I/O (not io_uring)
    "io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64 "
    # self-restriction only
    "landlock_create_ruleset landlock_add_rule landlock_restrict_self"
).split()

DENIED = (
    # io_uring: its own kernel surface, reachable from any process
    "io_uring_setup io_uring_enter io_uring_register "
    # kernel keyrings, eBPF, perf, userfaultfd: frequent local-escalation paths
    "keyctl add_key request_key bpf perf_event_open userfaultfd "
    # reading or steering other processes
    "ptrace process_vm_readv process_vm_writev kcmp pidfd_getfd process_madvise process_mrelease "
    # namespaces, mounts, roots
    "unshare setns mount umount umount2 pivot_root chroot fsopen fsconfig fsmount fspick open_tree "
    "move_mount mount_setattr open_by_handle_at name_to_handle_at "
    # the machine: modules, kexec, reboot, clocks, swap, quotas, accounting, logs
    "init_module finit_module delete_module create_module query_module get_kernel_syms kexec_load "
    "kexec_file_load reboot swapon swapoff settimeofday stime clock_settime clock_settime64 "
    "clock_adjtime clock_adjtime64 adjtimex quotactl quotactl_fd acct syslog vhangup lookup_dcookie "
    "nfsservctl _sysctl sysfs ustat uselib fanotify_init "
    # NUMA placement, hardware ports, segment tables, vm86
    "mbind set_mempolicy get_mempolicy set_mempolicy_home_node migrate_pages move_pages iopl ioperm "
    "modify_ldt vm86 vm86old memfd_secret"
).split()


@cache
def profile() -> dict[str, Any]:
    """The profile as a dict in Docker's seccomp JSON format."""
    syscalls: list[dict[str, Any]] = [
        {"names": sorted(ALLOWED), "action": "SCMP_ACT_ALLOW"},
        {
            # clone without namespace flags only; clone3 hides its flags in memory, so it gets
            # ENOSYS and the C library falls back to clone
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        },
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        {"names": sorted(DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM},
    ]
    syscalls += [
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}],
        }
        for value in PERSONALITIES
    ]
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS, "syscalls": syscalls}


@cache
def security_opt() -> str:
    """The ``--security-opt`` value that applies the profile (Docker wants the JSON inline)."""
    return "seccomp=" + json.dumps(profile(), separators=(",", ":"))

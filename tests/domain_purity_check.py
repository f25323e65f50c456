"""Fails if the domain core reaches outside the C++17 standard library.

Usage: domain_purity_check.py --deps DEPS_FILE FILE...
  FILE...    domain sources and headers: each #include must be a C++17
             standard header (<...>) or another domain header ("domain/...").
  DEPS_FILE  output of `bazel query deps(//domain)` (a genquery): every
             target must be in //domain (no adapters, no absl, no gflags).
Prints each violation and exits 1 if there is any.
"""
import re
import sys

# C++17 standard library headers (no C compatibility headers such as
# <stdio.h>, no POSIX, no Windows).
STANDARD_HEADERS = set("""
algorithm any array atomic bitset cassert cctype cerrno cfloat charconv
chrono cinttypes climits cmath codecvt complex condition_variable csetjmp
csignal cstdarg cstddef cstdint cstdio cstdlib cstring ctime cwchar cwctype
deque exception execution filesystem forward_list fstream functional future
initializer_list iomanip ios iosfwd iostream istream iterator limits list
locale map memory memory_resource mutex new numeric optional ostream queue
random ratio regex scoped_allocator set shared_mutex sstream stack stdexcept
streambuf string string_view system_error thread tuple type_traits typeindex
typeinfo unordered_map unordered_set utility valarray variant vector
""".split())

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def check_file(path):
    problems = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                if re.match(r"^\s*#\s*include", line):
                    problems.append(f"{path}:{number}: unparsable include: {line.strip()}")
                continue
            kind, header = m.groups()
            if kind == "<" and header in STANDARD_HEADERS:
                continue
            if kind == '"' and header.startswith("domain/") and ".." not in header:
                continue
            problems.append(
                f"{path}:{number}: domain/ may include only the C++17 standard "
                f"library and domain/ headers, not {kind}{header}{'>' if kind == '<' else kind}")
    return problems


def check_deps(path):
    problems = []
    with open(path) as f:
        for target in f.read().split():
            if not target.startswith("//domain:"):
                problems.append(f"//domain depends on {target}, outside the domain")
    return problems


def main(argv):
    problems = []
    files = argv[1:]
    if len(files) >= 2 and files[0] == "--deps":
        problems += check_deps(files[1])
        files = files[2:]
    if not files:
        problems.append("no domain files given")
    for path in files:
        problems += check_file(path)
    for p in problems:
        print(p)
    print(f"checked {len(files)} files: {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

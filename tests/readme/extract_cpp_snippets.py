#!/usr/bin/python3
"""Turns the ```cpp blocks of README.md into a C++ test, so that they are
compiled (with -Werror, see BUILD.bazel) and run by `bazel test //...`.

Usage: extract_cpp_snippets.py README.md OUTPUT.cc

Each block becomes a function `absl::Status Snippet<N>()`: its #include
lines go to the top of the file, the other lines into the body, followed by
`return absl::OkStatus();`; so a block may `return some_status;` early, as
code that calls the C++ client would. `#line` directives point compiler
errors at README.md. A README without any ```cpp block is an error, so the
test cannot pass vacuously.
"""
import sys


def blocks(text):
    """[(first body line number, [lines])] of the ```cpp fenced blocks."""
    found, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if current is None:
            if stripped in ('```cpp', '```c++'):
                current, start = [], number + 1
        elif stripped.startswith('```'):
            found.append((start, current))
            current = None
        else:
            current.append(line)
    if current is not None:
        sys.exit('README: a ```cpp block opened at line %d is never closed'
                 % (start - 1))
    return found


def main(readme, output):
    with open(readme) as f:
        snippets = blocks(f.read())
    if not snippets:
        sys.exit('%s has no ```cpp block' % readme)
    includes = ['#include "absl/status/status.h"', '#include "gtest/gtest.h"']
    functions, tests = [], []
    for index, (start, lines) in enumerate(snippets, 1):
        body = []
        for offset, line in enumerate(lines):
            if line.lstrip().startswith('#include'):
                includes.append('#line %d "README.md"' % (start + offset))
                includes.append(line.strip())
            else:
                body.append('#line %d "README.md"' % (start + offset))
                body.append(line)
        functions.append('\n'.join(
            ['absl::Status Snippet%d() {' % index] + body +
            ['  return absl::OkStatus();', '}']))
        tests.append('TEST(ReadmeSnippets, Block%d) {\n'
                     '  absl::Status status = Snippet%d();\n'
                     '  EXPECT_TRUE(status.ok())\n'
                     '      << "README.md line %d: " << status;\n'
                     '}' % (index, index, start - 1))
    with open(output, 'w') as f:
        f.write('// Generated from README.md by extract_cpp_snippets.py: '
                '%d ```cpp block(s).\n' % len(snippets))
        f.write('\n'.join(includes) + '\n\nnamespace {\n\n')
        f.write('\n\n'.join(functions))
        f.write('\n\n}  // namespace\n\n')
        f.write('\n\n'.join(tests) + '\n')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

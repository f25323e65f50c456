#include "client/cli_platform.h"

namespace portpicker {

Utf8Main::Utf8Main(int& argc, char**& argv) : args_(ArgumentsUtf8(argc, argv)) {
  argv_.push_back(argc > 0 ? argv[0] : nullptr);
  for (std::string& arg : args_) argv_.push_back(&arg[0]);
  argv_.push_back(nullptr);
  argc = static_cast<int>(args_.size()) + 1;
  argv = argv_.data();
  UseUtf8Console();
}

}  // namespace portpicker

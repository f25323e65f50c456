// A domain header that breaks the rules, for domain_purity_check_selftest.
#include <sys/socket.h>

#include <vector>

#include "absl/status/status.h"
#include "adapters/linux/linux_port_probe.h"

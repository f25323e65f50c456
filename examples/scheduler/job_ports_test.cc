#include "examples/scheduler/job_ports.h"

#include <set>

#include "gtest/gtest.h"

namespace scheduler {
namespace {

TEST(JobPorts, LeasesDistinctPortsToJobs) {
  JobPorts ports({30000, 30001, 30002, 30003});
  int64_t a = ports.StartJob();
  int64_t b = ports.StartJob();
  std::vector<uint16_t> pa = ports.Lease(a, 2);
  std::vector<uint16_t> pb = ports.Lease(b, 2);
  ASSERT_EQ(pa.size(), 2u);
  ASSERT_EQ(pb.size(), 2u);
  std::set<uint16_t> all(pa.begin(), pa.end());
  all.insert(pb.begin(), pb.end());
  EXPECT_EQ(all.size(), 4u);
  EXPECT_TRUE(ports.Lease(b, 1).empty()) << "range exhausted";
}

TEST(JobPorts, FinishedJobsPortsComeBack) {
  JobPorts ports({30000, 30001, 30002});
  int64_t a = ports.StartJob();
  std::vector<uint16_t> pa = ports.Lease(a, 3);
  ASSERT_EQ(pa.size(), 3u);
  int64_t b = ports.StartJob();
  EXPECT_TRUE(ports.Lease(b, 1).empty());
  EXPECT_EQ(ports.FinishJob(a), 3u);
  EXPECT_TRUE(ports.PortsOf(a).empty());
  std::vector<uint16_t> pb = ports.Lease(b, 3);
  EXPECT_EQ(std::set<uint16_t>(pb.begin(), pb.end()),
            std::set<uint16_t>(pa.begin(), pa.end()));
}

TEST(JobPorts, UnknownOrFinishedJobsGetNothing) {
  JobPorts ports({30000});
  EXPECT_TRUE(ports.Lease(12345, 1).empty());
  int64_t a = ports.StartJob();
  ports.FinishJob(a);
  EXPECT_TRUE(ports.Lease(a, 1).empty());
}

}  // namespace
}  // namespace scheduler

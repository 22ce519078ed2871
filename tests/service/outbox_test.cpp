// The durable outbox on its own: order, acknowledgement, bounds, recovery after a crash
// (torn and damaged records), the head surviving reopening, and the fsync policies.
#include "detflow/service/outbox.h"

#include <atomic>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "detflow/error.h"
#include "shared_data.h"

namespace detflow::service {
namespace {

OutboxMessage message(int index, std::size_t payload_bytes = 40) {
  OutboxMessage result;
  result.event_id = "run-" + std::to_string(index);
  result.topic = "detflow/cam/events";
  result.payload = "{\"n\":" + std::to_string(index) + ",\"pad\":\"" + std::string(payload_bytes, 'x') + "\"}";
  return result;
}

OutboxSettings settings_in(const std::filesystem::path& directory, std::uint64_t max_bytes = 1u << 20) {
  OutboxSettings settings;
  settings.directory = directory;
  settings.max_bytes = max_bytes;
  settings.fsync = FsyncPolicy::never;
  return settings;
}

std::vector<std::string> ids_of(const std::vector<OutboxRecord>& records) {
  std::vector<std::string> ids;
  for (const auto& record : records) ids.push_back(record.message.event_id);
  return ids;
}

std::vector<std::filesystem::path> segments_in(const std::filesystem::path& directory) {
  std::vector<std::filesystem::path> files;
  for (const auto& item : std::filesystem::directory_iterator(directory)) {
    if (item.path().extension() == ".seg") files.push_back(item.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Crc32, MatchesTheStandardCheckValue) {
  // The CRC-32/ISO-HDLC check value of "123456789".
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);
  // Incremental equals one pass.
  EXPECT_EQ(crc32("6789", 4, crc32("12345", 5)), 0xCBF43926u);
}

TEST(Outbox, HandsOutRecordsInOrderWithEveryField) {
  const auto directory = test::temporary_directory("outbox");
  Outbox outbox(settings_in(directory));
  OutboxMessage retained = message(2);
  retained.qos = 0;
  retained.retained = true;
  retained.topic = "detflow/cam/counts/door";
  EXPECT_EQ(outbox.append(message(1)), 1u);
  EXPECT_EQ(outbox.append(retained), 2u);
  EXPECT_EQ(outbox.append(message(3)), 3u);

  const auto records = outbox.take(10);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(ids_of(records), (std::vector<std::string>{"run-1", "run-2", "run-3"}));
  EXPECT_EQ(records[1].sequence, 2u);
  EXPECT_EQ(records[1].message.topic, "detflow/cam/counts/door");
  EXPECT_EQ(records[1].message.qos, 0);
  EXPECT_TRUE(records[1].message.retained);
  EXPECT_EQ(records[1].message.payload, message(2).payload);
  EXPECT_EQ(records[0].message.qos, 1);
  EXPECT_FALSE(records[0].message.retained);
  // Everything is in flight: nothing more to take.
  EXPECT_TRUE(outbox.take(10).empty());
  EXPECT_EQ(outbox.counters().in_flight, 3);
}

TEST(Outbox, TakeRespectsTheLimitAndContinuesWhereItStopped) {
  const auto directory = test::temporary_directory("outbox");
  Outbox outbox(settings_in(directory));
  for (int index = 1; index <= 5; ++index) outbox.append(message(index));
  EXPECT_EQ(ids_of(outbox.take(2)), (std::vector<std::string>{"run-1", "run-2"}));
  EXPECT_EQ(ids_of(outbox.take(2)), (std::vector<std::string>{"run-3", "run-4"}));
  EXPECT_EQ(ids_of(outbox.take(2)), (std::vector<std::string>{"run-5"}));
}

TEST(Outbox, AcknowledgedRecordsLeaveAndOutOfOrderAcknowledgementsWait) {
  const auto directory = test::temporary_directory("outbox");
  Outbox outbox(settings_in(directory));
  for (int index = 1; index <= 4; ++index) outbox.append(message(index));
  ASSERT_EQ(outbox.take(4).size(), 4u);
  outbox.acknowledge(2);
  outbox.acknowledge(4);
  auto counters = outbox.counters();
  EXPECT_EQ(counters.acknowledged, 2);
  EXPECT_EQ(counters.pending, 2);
  EXPECT_EQ(counters.in_flight, 2);
  outbox.acknowledge(2);   // twice: ignored
  outbox.acknowledge(99);  // unknown: ignored
  EXPECT_EQ(outbox.counters().acknowledged, 2);
  // After a lost connection only the unacknowledged ones come back, in order.
  outbox.requeue_in_flight();
  EXPECT_EQ(ids_of(outbox.take(10)), (std::vector<std::string>{"run-1", "run-3"}));
  outbox.acknowledge(1);
  outbox.acknowledge(3);
  counters = outbox.counters();
  EXPECT_EQ(counters.pending, 0);
  EXPECT_EQ(counters.pending_bytes, 0u);
}

TEST(Outbox, ReopeningResumesAfterTheAcknowledgedHead) {
  const auto directory = test::temporary_directory("outbox");
  {
    Outbox outbox(settings_in(directory));
    for (int index = 1; index <= 6; ++index) outbox.append(message(index));
    ASSERT_EQ(outbox.take(3).size(), 3u);
    outbox.acknowledge(1);
    outbox.acknowledge(2);
    outbox.acknowledge(3);
  }
  Outbox reopened(settings_in(directory));
  EXPECT_EQ(reopened.counters().recovered, 3);
  EXPECT_EQ(ids_of(reopened.take(10)), (std::vector<std::string>{"run-4", "run-5", "run-6"}));
  // Sequences continue; they are never reused.
  EXPECT_EQ(reopened.append(message(7)), 7u);
}

TEST(Outbox, FullQueueDropsTheOldestAndCountsThem) {
  const auto directory = test::temporary_directory("outbox");
  Outbox outbox(settings_in(directory, 4096));
  int appended = 0;
  while (outbox.counters().dropped == 0) outbox.append(message(++appended, 200));
  // A few more: each pushes out one old record.
  for (int extra = 0; extra < 5; ++extra) outbox.append(message(++appended, 200));
  const auto counters = outbox.counters();
  EXPECT_LE(counters.pending_bytes, 4096u);
  EXPECT_EQ(counters.dropped + counters.pending, appended);
  const auto records = outbox.take(1000);
  ASSERT_FALSE(records.empty());
  // What is left is the newest, contiguous, ending with the last appended.
  EXPECT_EQ(records.back().message.event_id, "run-" + std::to_string(appended));
  EXPECT_EQ(records.front().message.event_id, "run-" + std::to_string(counters.dropped + 1));
}

TEST(Outbox, DroppingAnInFlightRecordIgnoresItsLateAcknowledgement) {
  const auto directory = test::temporary_directory("outbox");
  Outbox outbox(settings_in(directory, 4096));
  outbox.append(message(1, 200));
  ASSERT_EQ(outbox.take(1).size(), 1u);
  int appended = 1;
  while (outbox.counters().dropped == 0) outbox.append(message(++appended, 200));
  outbox.acknowledge(1);  // arrives after the record was pushed out
  const auto counters = outbox.counters();
  EXPECT_EQ(counters.acknowledged, 0);
  EXPECT_EQ(counters.in_flight, 0);
  EXPECT_EQ(counters.pending, appended - 1);
}

TEST(Outbox, ARecordLargerThanTheWholeOutboxIsDroppedNotQueued) {
  const auto directory = test::temporary_directory("outbox");
  Outbox outbox(settings_in(directory, 4096));
  outbox.append(message(1));
  EXPECT_EQ(outbox.append(message(2, 10000)), 0u);
  const auto counters = outbox.counters();
  EXPECT_EQ(counters.dropped, 1);
  EXPECT_EQ(counters.pending, 1);
  EXPECT_EQ(ids_of(outbox.take(10)), (std::vector<std::string>{"run-1"}));
}

// /metrics' detflow_events_dropped_total: the drops of every outbox in the process, summed.
TEST(Outbox, ProcessTotalSumsTheDropsOfEveryOutbox) {
  const std::int64_t before = outbox_records_dropped_total();
  const auto directory = test::temporary_directory("outbox");
  Outbox full(settings_in(directory / "full", 4096));
  for (int index = 1; index <= 60; ++index) full.append(message(index, 200));
  Outbox small(settings_in(directory / "small", 4096));
  small.append(message(1, 10000));  // larger than the whole outbox
  ASSERT_GT(full.counters().dropped, 0);
  EXPECT_EQ(outbox_records_dropped_total() - before, full.counters().dropped + small.counters().dropped);
}

TEST(Outbox, ATornLastRecordIsDroppedAndTheRestKept) {
  const auto directory = test::temporary_directory("outbox");
  {
    Outbox outbox(settings_in(directory));
    for (int index = 1; index <= 3; ++index) outbox.append(message(index));
  }
  const auto segments = segments_in(directory);
  ASSERT_EQ(segments.size(), 1u);
  const auto full_size = std::filesystem::file_size(segments[0]);
  // A power loss in the middle of the third record's write.
  std::filesystem::resize_file(segments[0], full_size - 10);
  {
    Outbox reopened(settings_in(directory));
    const auto counters = reopened.counters();
    EXPECT_EQ(counters.corrupt, 1);
    EXPECT_EQ(counters.recovered, 2);
    EXPECT_EQ(ids_of(reopened.take(10)), (std::vector<std::string>{"run-1", "run-2"}));
    // The file was cut back to whole records, so appends continue cleanly after them.
    EXPECT_EQ(reopened.append(message(4)), 3u);
  }
  Outbox again(settings_in(directory));
  EXPECT_EQ(again.counters().corrupt, 0);
  EXPECT_EQ(ids_of(again.take(10)), (std::vector<std::string>{"run-1", "run-2", "run-4"}));
}

TEST(Outbox, ADamagedRecordEndsItsSegmentButNotTheOthers) {
  const auto directory = test::temporary_directory("outbox");
  OutboxSettings settings = settings_in(directory);
  settings.segment_bytes = 300;  // about two records per segment
  {
    Outbox outbox(settings);
    for (int index = 1; index <= 8; ++index) outbox.append(message(index, 60));
  }
  auto segments = segments_in(directory);
  ASSERT_GE(segments.size(), 3u);
  // Flip one payload byte of the first record of the last segment but one.
  const auto victim = segments[segments.size() - 2];
  {
    std::fstream file(victim, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(40);
    file.put('#');
  }
  Outbox reopened(settings);
  EXPECT_GE(reopened.counters().corrupt, 1);
  const auto ids = ids_of(reopened.take(100));
  // The records of the last segment survive; the last record appended is there.
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.back(), "run-8");
  EXPECT_LT(ids.size(), 8u);
}

TEST(Outbox, AcknowledgedSegmentsAreDeleted) {
  const auto directory = test::temporary_directory("outbox");
  OutboxSettings settings = settings_in(directory);
  settings.segment_bytes = 300;
  Outbox outbox(settings);
  for (int index = 1; index <= 10; ++index) outbox.append(message(index, 60));
  EXPECT_GE(segments_in(directory).size(), 4u);
  for (const auto& record : outbox.take(100)) outbox.acknowledge(record.sequence);
  // At most the segment being appended to is left.
  EXPECT_LE(segments_in(directory).size(), 1u);
  EXPECT_EQ(outbox.counters().pending, 0);
}

TEST(Outbox, ARecordAppendedBeforeAKillIsThereAfterIt) {
  // A child appends and is killed with SIGKILL before any clean close; the parent reopens.
  const auto directory = test::temporary_directory("outbox");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Outbox outbox(settings_in(directory));
    for (int index = 1; index <= 100; ++index) outbox.append(message(index));
    outbox.take(10);
    for (std::uint64_t sequence = 1; sequence <= 10; ++sequence) outbox.acknowledge(sequence);
    ::kill(::getpid(), SIGKILL);
    std::_Exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  Outbox reopened(settings_in(directory));
  const auto records = reopened.take(1000);
  ASSERT_EQ(records.size(), 90u);
  EXPECT_EQ(records.front().message.event_id, "run-11");
  EXPECT_EQ(records.back().message.event_id, "run-100");
}

TEST(Outbox, WaitForRecordsWakesOnAppendAndHonoursTheInFlightBound) {
  const auto directory = test::temporary_directory("outbox");
  Outbox outbox(settings_in(directory));
  EXPECT_FALSE(outbox.wait_for_records(std::chrono::milliseconds(20)));
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    outbox.append(message(1));
    outbox.append(message(2));
  });
  EXPECT_TRUE(outbox.wait_for_records(std::chrono::seconds(5)));
  writer.join();
  ASSERT_EQ(outbox.take(1).size(), 1u);
  // One in flight and a bound of one: nothing can be taken until it is acknowledged.
  EXPECT_FALSE(outbox.wait_for_records(std::chrono::milliseconds(20), 1));
  outbox.acknowledge(1);
  EXPECT_TRUE(outbox.wait_for_records(std::chrono::milliseconds(20), 1));
}

TEST(Outbox, ConcurrentWriterAndPublisherLoseNothing) {
  const auto directory = test::temporary_directory("outbox");
  OutboxSettings settings = settings_in(directory, 8u << 20);
  settings.fsync = FsyncPolicy::interval;
  settings.fsync_interval = std::chrono::milliseconds(5);
  Outbox outbox(settings);
  constexpr int total = 5000;
  std::thread writer([&] {
    for (int index = 1; index <= total; ++index) outbox.append(message(index));
  });
  std::set<std::string> received;
  int requeues = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (static_cast<int>(received.size()) < total && std::chrono::steady_clock::now() < deadline) {
    outbox.wait_for_records(std::chrono::milliseconds(50), 64);
    auto records = outbox.take(64);
    // Now and then lose a "connection": the unacknowledged half goes back.
    for (std::size_t index = 0; index < records.size(); ++index) {
      if (index % 2 == 1 && requeues < 20) continue;
      received.insert(records[index].message.event_id);
      outbox.acknowledge(records[index].sequence);
    }
    if (requeues < 20 && records.size() > 1) {
      outbox.requeue_in_flight();
      ++requeues;
    }
    outbox.sync_if_due();
  }
  writer.join();
  EXPECT_EQ(received.size(), static_cast<std::size_t>(total));
  EXPECT_EQ(outbox.counters().pending, 0);
  EXPECT_EQ(outbox.counters().dropped, 0);
}

TEST(Outbox, SettingsAreChecked) {
  const auto directory = test::temporary_directory("outbox");
  EXPECT_THROW(Outbox(settings_in(directory, 100)), Error);
  EXPECT_THROW(Outbox(settings_in({})), Error);
  EXPECT_THROW(Outbox(settings_in("/proc/no-such-place/outbox")), Error);
  EXPECT_EQ(parse_fsync_policy("always"), FsyncPolicy::always);
  EXPECT_EQ(parse_fsync_policy("never"), FsyncPolicy::never);
  EXPECT_THROW(parse_fsync_policy("sometimes"), Error);
}

TEST(Outbox, FsyncAlwaysStillRoundTrips) {
  const auto directory = test::temporary_directory("outbox");
  OutboxSettings settings = settings_in(directory);
  settings.fsync = FsyncPolicy::always;
  {
    Outbox outbox(settings);
    for (int index = 1; index <= 20; ++index) outbox.append(message(index));
    for (std::uint64_t sequence = 1; sequence <= 5; ++sequence) {
      outbox.take(1);
      outbox.acknowledge(sequence);
    }
  }
  Outbox reopened(settings);
  const auto records = reopened.take(100);
  ASSERT_EQ(records.size(), 15u);
  EXPECT_EQ(records.front().message.event_id, "run-6");
}

}  // namespace
}  // namespace detflow::service

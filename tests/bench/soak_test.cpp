// The soak check (soak.h): the line fit, the warm-up rule, and a short real soak on a live
// GStreamer source whose report has every field the table and scripts read.
#include "detflow/bench/soak.h"

#include <gtest/gtest.h>

#include <cmath>

#include "detflow/error.h"
#include "model_builder.h"
#include "shared_data.h"

namespace detflow::bench {
namespace {

TEST(FitLine, RecoversAKnownSlopeAndItsUncertainty) {
  std::vector<double> x, y;
  for (int index = 0; index < 50; ++index) {
    x.push_back(index);
    y.push_back(3.0 + 0.5 * index);
  }
  const LineFit exact = fit_line(x, y);
  EXPECT_NEAR(exact.slope, 0.5, 1e-12);
  EXPECT_NEAR(exact.intercept, 3.0, 1e-12);
  EXPECT_NEAR(exact.slope_standard_error, 0.0, 1e-12);
  // Alternating noise of +-1 around the same line: same slope, a non-zero standard error.
  for (std::size_t index = 0; index < y.size(); ++index) y[index] += index % 2 == 0 ? 1.0 : -1.0;
  const LineFit noisy = fit_line(x, y);
  EXPECT_NEAR(noisy.slope, 0.5, 0.01);
  EXPECT_GT(noisy.slope_standard_error, 0.001);
  EXPECT_THROW(fit_line({1.0}, {2.0}), Error);
  EXPECT_THROW(fit_line({1.0, 1.0}, {2.0, 3.0}), Error);
}

TEST(SoakWarmUp, IsTheLargerOfTenSecondsAndAFifthUnlessTooLittleIsLeft) {
  EXPECT_DOUBLE_EQ(soak_warm_up_seconds(120), 24.0);
  EXPECT_DOUBLE_EQ(soak_warm_up_seconds(30), 10.0);
  EXPECT_DOUBLE_EQ(soak_warm_up_seconds(15), 3.0);  // 10 s would leave 5 samples
  EXPECT_DOUBLE_EQ(soak_warm_up_seconds(3600), 720.0);
}

TEST(Soak, RefusesSoaksTooShortToFit) {
  SoakOptions options;
  options.seconds = 2;
  EXPECT_THROW(run_soak(options), Error);
}

TEST(Soak, ShortLiveSoakReportsSlopeFpsAndSamples) {
  const auto folder = test::temporary_directory("soak");
  SoakOptions options;
  options.model.path = test::write_yolox_model(folder / "yolox.onnx");
  options.seconds = 6;
  options.threads = 1;
  const nlohmann::json soak = run_soak(options);
  EXPECT_GE(soak["samples"].size(), 5u) << soak.dump(2);
  EXPECT_GT(soak["fps"].get<double>(), 5.0) << soak.dump(2);  // 30 FPS offered; a 64x64 model keeps up
  EXPECT_GT(soak["frames_processed"].get<std::int64_t>(), 30);
  ASSERT_TRUE(soak["slope_mib_per_hour"].is_number()) << soak.dump(2);
  EXPECT_TRUE(std::isfinite(soak["slope_mib_per_hour"].get<double>()));
  EXPECT_GT(soak["start_rss_mib"].get<double>(), 1.0);
  EXPECT_GE(soak["peak_rss_mib"].get<double>(), soak["end_rss_mib"].get<double>());
  EXPECT_TRUE(soak.contains("met"));
  const std::string table = format_soak_table(soak);
  EXPECT_NE(table.find("MiB/hour"), std::string::npos) << table;
  EXPECT_NE(table.find("FPS"), std::string::npos) << table;
}

}  // namespace
}  // namespace detflow::bench

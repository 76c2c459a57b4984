// Image data: IDX and CIFAR-10 readers (good and malformed files), pixel scaling, flips, and
// the PNG pictures of images.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <stb_image.h>
#include <torch/utils.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli_harness.hpp"
#include "sbgm/data/dataset.hpp"
#include "sbgm/data/image_files.hpp"
#include "sbgm/data/scaling.hpp"
#include "sbgm/nets/score_net.hpp"
#include "sbgm/plot/image_grid.hpp"
#include "sbgm/run/run_config.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/train/trainer.hpp"
#include "error_of.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

void write_bytes(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// An IDX file of unsigned bytes with the given dimensions and values 0, 1, 2, ... (mod 256).
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims) {
  std::vector<uint8_t> b{0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  size_t count = 1;
  for (uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
    count *= d;
  }
  for (size_t i = 0; i < count; ++i) b.push_back(static_cast<uint8_t>(i % 256));
  return b;
}

}  // namespace

TEST(ImageFiles, IdxImagesAndLabelsPlainAndGzipped) {
  const fs::path images = scratch() / "images-idx3-ubyte", labels = scratch() / "labels-idx1-ubyte";
  write_bytes(images, idx_bytes({3, 4, 5}));
  write_bytes(labels, idx_bytes({3}));
  ASSERT_EQ(std::system(("gzip -kf " + images.string()).c_str()), 0);
  for (const std::string path : {images.string(), images.string() + ".gz"}) {
    SCOPED_TRACE(path);
    EXPECT_TRUE(is_idx_file(path));
    const at::Tensor x = load_data_file(path);
    ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 1, 4, 5}));
    EXPECT_EQ(x.scalar_type(), at::kFloat);
    EXPECT_EQ(x[1][0][2][3].item<float>(), 20 + 2 * 5 + 3);  // row-major order
  }
  const at::Tensor y = load_data_file(labels.string());
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(y[2][0].item<float>(), 2);
}

TEST(ImageFiles, IdxMultiByteValuesAreBigEndian) {
  // int32 (type 0x0C), one dimension of 2: values 1 and 258.
  const fs::path p = scratch() / "ints.idx";
  write_bytes(p, {0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 2});
  const at::Tensor x = read_idx(p.string());
  EXPECT_EQ(x.flatten()[0].item<float>(), 1);
  EXPECT_EQ(x.flatten()[1].item<float>(), 258);
}

TEST(ImageFiles, MalformedIdxFilesGiveErrorsThatNameTheProblem) {
  const fs::path bad_magic = scratch() / "bad-magic.idx", truncated = scratch() / "truncated.idx",
                 long_file = scratch() / "long.idx", short_header = scratch() / "header.idx";
  std::vector<uint8_t> b = idx_bytes({2, 3, 3});
  std::vector<uint8_t> magic = b;
  magic[2] = 0x42;
  write_bytes(bad_magic, magic);
  write_bytes(truncated, std::vector<uint8_t>(b.begin(), b.end() - 4));
  std::vector<uint8_t> extra = b;
  extra.push_back(7);
  write_bytes(long_file, extra);
  write_bytes(short_header, std::vector<uint8_t>(b.begin(), b.begin() + 7));
  EXPECT_NE(error_of([&] { read_idx(bad_magic.string()); }).find("bad magic"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(truncated.string()); }).find("truncated"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(long_file.string()); }).find("promises 18 bytes"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(short_header.string()); }).find("truncated IDX header"), std::string::npos);
  // Through the data loader, a file that is no known format says so.
  EXPECT_NE(error_of([&] { load_data_file(bad_magic.string()); }).find("unknown data format"), std::string::npos);
}

TEST(ImageFiles, Cifar10RecordsAndTheirErrors) {
  const int64_t record = 1 + 3 * 32 * 32;
  std::vector<uint8_t> b(2 * record);
  b[0] = 3;
  b[record] = 9;
  b[1 + 1024 + 32 * 5 + 7] = 200;             // record 0, green channel, row 5, column 7
  b[record + 1 + 2048 + 32 * 31 + 31] = 255;  // record 1, blue channel, last pixel
  const fs::path good = scratch() / "data_batch_1.bin", bad_size = scratch() / "short.bin",
                 bad_label = scratch() / "labels.bin";
  write_bytes(good, b);
  const at::Tensor x = load_data_file(good.string());
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_EQ(x[0][1][5][7].item<float>(), 200);
  EXPECT_EQ(x[1][2][31][31].item<float>(), 255);
  EXPECT_EQ(x.sum().item<float>(), 455);
  const at::Tensor labels = read_cifar10_labels(good.string());
  EXPECT_EQ(labels.flatten()[0].item<float>(), 3);
  EXPECT_EQ(labels.flatten()[1].item<float>(), 9);
  write_bytes(bad_size, std::vector<uint8_t>(b.begin(), b.end() - 1));
  EXPECT_NE(error_of([&] { load_data_file(bad_size.string()); }).find("whole number of CIFAR-10 records"), std::string::npos);
  b[record] = 10;
  write_bytes(bad_label, b);
  EXPECT_NE(error_of([&] { read_cifar10(bad_label.string()); }).find("label 10"), std::string::npos);
}

TEST(ImageFiles, FashionMnistFromDebianPackageWhenInstalled) {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(path)) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const at::Tensor x = load_data_file(path);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(x.min().item<float>(), 0);
  EXPECT_EQ(x.max().item<float>(), 255);
}

TEST(ImageFiles, NpyStacksBecomeImageBatches) {
  EXPECT_EQ(as_image_batch(at::zeros({5, 4, 6}), "x").sizes(), (std::vector<int64_t>{5, 1, 4, 6}));
  EXPECT_EQ(as_image_batch(at::zeros({5, 3, 4, 6}), "x").sizes(), (std::vector<int64_t>{5, 3, 4, 6}));
  EXPECT_THROW(as_image_batch(at::zeros({5, 24}), "x"), InvalidArgument);
}

TEST(PixelScaling, LevelsMapOntoTheRangeAndBack) {
  const at::Tensor x = at::tensor({0.0f, 127.5f, 255.0f}).reshape({3, 1});
  const Scaling s = Scaling::pixels(256, -1, 1, x[0]);
  EXPECT_TRUE(at::allclose(s.to_model(x).flatten(), at::tensor({-1.0f, 0.0f, 1.0f})));
  EXPECT_TRUE(at::allclose(s.to_data(s.to_model(x)), x));
  EXPECT_NEAR(s.log_abs_det_jacobian(), -std::log(127.5), 1e-6);
  DataConfig d;
  EXPECT_FALSE(d.pixel_range(false).has_value());  // auto, not an image file
  EXPECT_EQ(*d.pixel_range(true), (std::array<double, 2>{-1, 1}));
  d.image_range = "0,1";
  EXPECT_EQ(*d.pixel_range(false), (std::array<double, 2>{0, 1}));
  d.image_range = "off";
  EXPECT_FALSE(d.pixel_range(true).has_value());
  for (const char* bad : {"1,0", "-1", "a,b"}) {
    d.image_range = bad;
    EXPECT_THROW(d.pixel_range(true), InvalidArgument) << bad;
  }
}

TEST(PixelScaling, HorizontalFlipsShowEachImageBothWays) {
  // One asymmetric image; with flips every batch row is it or its mirror, and both occur.
  const at::Tensor image = at::arange(16, at::kFloat).reshape({1, 1, 4, 4});
  const at::Tensor data = image.repeat({8, 1, 1, 1}), mirror = image.flip({-1});
  NetConfig nc;
  nc.width = 8;
  nc.depth = 1;
  torch::manual_seed(0);
  TrainConfig tc;
  tc.steps = 4;
  tc.batch_size = 8;
  tc.hflip = true;
  Trainer trainer(make_score_net(nc, {1, 4, 4}), nullptr, make_sde(SDEConfig{}), Parameterization::Noise, tc, data);
  int64_t flipped = 0;
  for (int s = 0; s < 4; ++s) {
    trainer.step();
    for (int64_t i = 0; i < 8; ++i) {
      const at::Tensor row = trainer.last_batch()[i];
      const bool is_mirror = at::equal(row, mirror[0]);
      EXPECT_TRUE(is_mirror || at::equal(row, image[0]));
      flipped += is_mirror;
    }
  }
  EXPECT_GT(flipped, 4);
  EXPECT_LT(flipped, 28);
}

TEST(ImageGrid, PixelsLandWhereTheGridPutsThem) {
  // Five 1x4x4 images, image i filled with the value 50 i: three columns, two rows, each image
  // enlarged 16 times (to 64 pixels) with 2-pixel gaps.
  const at::Tensor images = (at::arange(5, at::kFloat) * 50).reshape({5, 1, 1, 1}).expand({5, 1, 4, 4});
  const fs::path png = scratch() / "grid.png";
  write_image_grid(png.string(), images, PixelRange{0, 255});
  int w = 0, h = 0, channels = 0;
  unsigned char* pixels = stbi_load(png.string().c_str(), &w, &h, &channels, 3);
  ASSERT_NE(pixels, nullptr);
  EXPECT_EQ(w, 3 * 66 + 2);
  EXPECT_EQ(h, 2 * 66 + 2);
  auto at_xy = [&](int x, int y) { return static_cast<int>(pixels[(y * w + x) * 3]); };
  EXPECT_EQ(at_xy(2 + 10, 2 + 10), 0);         // image 0
  EXPECT_EQ(at_xy(2 + 66 + 30, 2 + 5), 50);    // image 1
  EXPECT_EQ(at_xy(2 + 66 + 5, 2 + 66 + 60), 200);  // image 4, second row
  stbi_image_free(pixels);
  EXPECT_THROW(write_image_grid(png.string(), at::zeros({2, 2, 4, 4}), PixelRange{}), InvalidArgument);
}

TEST(PixelScaling, DequantisedTrainingSeesEachLevelSpreadOverItsBin) {
  // Levels 0..3 in units of 0.5: every batch value lies in [k, k + 0.5) for its row's level k.
  const at::Tensor data = (at::arange(8, at::kFloat).remainder(4) * 0.5).reshape({8, 1, 1, 1}).expand({8, 1, 2, 2}).contiguous();
  NetConfig nc;
  nc.width = 8;
  nc.depth = 1;
  TrainConfig tc;
  tc.steps = 3;
  tc.batch_size = 8;
  tc.dequantize = true;
  EXPECT_THROW(Trainer(make_score_net(nc, {1, 2, 2}), nullptr, make_sde(SDEConfig{}), Parameterization::Noise, tc, data),
               InvalidArgument);  // no level width
  tc.level_width = 0.5;
  Trainer trainer(make_score_net(nc, {1, 2, 2}), nullptr, make_sde(SDEConfig{}), Parameterization::Noise, tc, data);
  trainer.step();
  const at::Tensor b = trainer.last_batch();
  const at::Tensor level = (b / 0.5).floor() * 0.5, offset = b - level;
  EXPECT_TRUE((offset >= 0).all().item<bool>());
  EXPECT_TRUE((offset < 0.5).all().item<bool>());
  EXPECT_GT(offset.std().item<double>(), 0.05);  // spread over the bin, not a constant shift
  // Every row's level is one of the data's.
  EXPECT_TRUE(((level >= 0) & (level <= 1.5)).all().item<bool>());
}

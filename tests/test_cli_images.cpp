// The command line on images: training the image networks on an IDX file, sample grids and
// denoising strips, bits/dim with dequantisation, and the errors for data they cannot take.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <stb_image.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli_harness.hpp"
#include "sbgm/io/npy.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

// 64 grey 8x8 images of one bright bar (horizontal or vertical) as a gzipped IDX file.
const fs::path& bars_idx() {
  static const fs::path path = [] {
    const fs::path p = scratch() / "bars-idx3-ubyte";
    std::vector<uint8_t> b{0, 0, 0x08, 3, 0, 0, 0, 64, 0, 0, 0, 8, 0, 0, 0, 8};
    for (int i = 0; i < 64; ++i)
      for (int r = 0; r < 8; ++r)
        for (int c = 0; c < 8; ++c) b.push_back(((i % 2) ? r : c) == (i / 2) % 8 ? 255 : 0);
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    EXPECT_EQ(std::system(("gzip -f " + p.string()).c_str()), 0);
    return fs::path(p.string() + ".gz");
  }();
  return path;
}

const std::string kTinyUNet =
    " --train.steps 2 --model.type unet --model.width 8 --model.depth 1 --model.attention_res 4"
    " --model.heads 2 --train.batch_size 16 --sample.n 4 --sample.steps 3 --threads 1";

const fs::path& trained_unet() {
  static const fs::path run = [] {
    const fs::path r = scratch() / "unet_run";
    const CliResult res = sbgm_cli("train --data " + bars_idx().string() + " --out " + r.string() + " --model.channel_mult 1,2" + kTinyUNet);
    EXPECT_EQ(res.code, 0) << res.err;
    return r;
  }();
  return run;
}

std::pair<int, int> png_size(const fs::path& p) {
  int w = 0, h = 0, c = 0;
  EXPECT_TRUE(stbi_info(p.string().c_str(), &w, &h, &c)) << p;
  return {w, h};
}

}  // namespace

TEST(CliImages, TrainOnIdxWritesAGridAndRecordsThePixelScaling) {
  const fs::path& run = trained_unet();
  EXPECT_EQ(read_npy((run / "samples.npy").string()).sizes(), (std::vector<int64_t>{4, 1, 8, 8}));
  // 4 images of 8 pixels, enlarged 8 times, 2 by 2 with 2-pixel gaps.
  EXPECT_EQ(png_size(run / "samples.png"), (std::pair<int, int>{2 * 66 + 2, 2 * 66 + 2}));
  const CliResult info = sbgm_cli("info --checkpoint " + run.string());
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(info.out.find("data shape: [1, 8, 8]"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("pixel levels 0..255 onto [-1, 1]"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("image_range = \"-1,1\""), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("channel_mult = [1,2]"), std::string::npos) << info.out;
}

TEST(CliImages, SampleGridAndDenoisingStrip) {
  const fs::path& run = trained_unet();
  const fs::path out = scratch() / "img.npy", png = scratch() / "img.png", strip = scratch() / "strip.png";
  CliResult r = sbgm_cli("sample --checkpoint " + run.string() + " --n 6 --steps 4 --out " + out.string() + " --png " + png.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor x = read_npy(out.string());
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{6, 1, 8, 8}));
  EXPECT_EQ(png_size(png), (std::pair<int, int>{3 * 66 + 2, 2 * 66 + 2}));
  r = sbgm_cli("sample --checkpoint " + run.string() + " --n 2 --steps 4 --trajectories 3 --out " + out.string() + " --png " + strip.string());
  ASSERT_EQ(r.code, 0) << r.err;
  // 3 rows (samples) of 5 frames (the prior draw and each of the 4 steps).
  EXPECT_EQ(png_size(strip), (std::pair<int, int>{5 * 66 + 2, 3 * 66 + 2}));
}

TEST(CliImages, BitsPerDimWithDequantisation) {
  const fs::path& run = trained_unet();
  // Eight of the training images as an .npy stack [8, 8, 8] (grey images without a channel axis).
  const fs::path stack = scratch() / "bars8.npy", out = scratch() / "bpd.npy";
  at::Tensor bars = at::zeros({8, 8, 8});
  for (int i = 0; i < 8; ++i) bars[i].select(i % 2, i).fill_(255.0f);
  write_npy(stack.string(), bars);
  const CliResult r = sbgm_cli("loglik --checkpoint " + run.string() + " --data " + stack.string() +
                               " --dequantize --bpd --divergence hutchinson --solver heun --steps 8 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("mean bits/dim over 8 rows"), std::string::npos) << r.out;
  const at::Tensor bpd = read_npy(out.string());
  ASSERT_EQ(bpd.sizes(), (std::vector<int64_t>{8}));
  // -log2 P(k) / D >= 0 for any discrete model, and the dequantised bound lies above it.
  EXPECT_TRUE(at::isfinite(bpd).all().item<bool>());
  EXPECT_GT(bpd.min().item<double>(), 0.0);
}

TEST(CliImages, DiTAndMixerTrainFromTheCommandLine) {
  for (const std::string kind : {"dit", "mixer"}) {
    const fs::path r = scratch() / (kind + "_run");
    const CliResult res = sbgm_cli("train --data " + bars_idx().string() + " --out " + r.string() + " --train.steps 3" +
                                   " --model.type " + kind + " --model.width 16 --model.depth 1 --model.heads 2" +
                                   " --model.patch_size 2 --train.batch_size 8 --sample.n 2 --sample.steps 2 --threads 1");
    ASSERT_EQ(res.code, 0) << kind << ": " << res.err;
    EXPECT_EQ(read_npy((r / "samples.npy").string()).sizes(), (std::vector<int64_t>{2, 1, 8, 8}));
  }
}

TEST(CliImages, DataTheImageNetworksCannotTake) {
  const fs::path out = scratch() / "bad_image_run";
  // (Each would train for only 2 steps if it were wrongly accepted.)
  expect_one_line_error(sbgm_cli("train --dataset moons --out " + out.string() + kTinyUNet), "takes images");
  expect_one_line_error(sbgm_cli("train --data " + bars_idx().string() + " --out " + out.string() + kTinyUNet +
                                 " --model.channel_mult 1,2,2,2,2"),
                        "multiples of 16");
  // Pixel scaling of values beyond the levels.
  const fs::path big = scratch() / "big.npy";
  write_npy(big.string(), at::full({4, 8, 8}, 300.0f));
  expect_one_line_error(sbgm_cli("train --data " + big.string() + " --out " + out.string() + kTinyUNet +
                                 " --data.image_range -1,1"),
                        "outside the levels");
  expect_one_line_error(sbgm_cli("train --data " + bars_idx().string() + " --out " + out.string() + kTinyUNet +
                                 " --data.image_range 1,-1"),
                        "LO must be below HI");
  expect_one_line_error(sbgm_cli("train --data " + bars_idx().string() + " --out " + out.string() + kTinyUNet +
                                 " --data.levels 1"),
                        "data.levels must be at least 2");
  // Dequantised training needs pixel levels to spread over.
  expect_one_line_error(sbgm_cli("train --dataset moons --out " + out.string() + " --train.steps 2 --train.dequantize true"),
                        "train.dequantize needs pixel data");
  EXPECT_FALSE(fs::exists(out));
  // Dequantising values that are not levels.
  const fs::path frac = scratch() / "frac.npy";
  write_npy(frac.string(), at::full({2, 8, 8}, 0.5f));
  expect_one_line_error(sbgm_cli("loglik --checkpoint " + trained_unet().string() + " --data " + frac.string() +
                                 " --dequantize --out " + (scratch() / "f.npy").string()),
                        "integer");
}

// sbgm inpaint on grey images given as [N, H, W] with a mask [H, W]: the output has the model's
// [N, n, 1, H, W], observed pixels are the observation itself (replacement with exact
// observations), the picture has a row per image (observation + samples); denoising by the
// noise-level start, and the default method (moment projection for 64 pixels).
TEST(CliImages, InpaintingAndDenoisingImages) {
  const fs::path& run = trained_unet();
  const fs::path stack = scratch() / "bars3.npy", mask = scratch() / "upper_half.npy", bad = scratch() / "bad_mask.npy";
  const fs::path out = scratch() / "inpainted_images.npy", png = scratch() / "inpainted_images.png";
  at::Tensor bars = at::zeros({3, 8, 8});
  for (int i = 0; i < 3; ++i) bars[i].select(i % 2, i + 2).fill_(255.0f);
  write_npy(stack.string(), bars);
  at::Tensor upper = at::zeros({8, 8});
  upper.narrow(0, 0, 4).fill_(1.0f);
  write_npy(mask.string(), upper);
  write_npy(bad.string(), at::ones({7, 8}));
  const std::string base = "inpaint --checkpoint " + run.string() + " --data " + stack.string() + " --steps 3 --out " + out.string();
  CliResult r = sbgm_cli(base + " --mask " + mask.string() + " --method replace --n 2 --png " + png.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const at::Tensor x = read_npy(out.string());
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 2, 1, 8, 8}));
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 2; ++k) EXPECT_TRUE(at::equal(x[i][k][0].narrow(0, 0, 4), bars[i].narrow(0, 0, 4))) << i << " " << k;
  EXPECT_EQ(png_size(png), (std::pair<int, int>{3 * 66 + 2, 3 * 66 + 2}));
  r = sbgm_cli(base + " --noise-std 40 --method noise-level");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy(out.string()).sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  r = sbgm_cli(base + " --mask " + mask.string());  // 64 pixels: moment projection
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(at::isfinite(read_npy(out.string())).all().item<bool>());
  fs::remove(out);
  expect_one_line_error(sbgm_cli(base + " --mask " + bad.string()), "the mask has shape [7, 8]");
  EXPECT_FALSE(fs::exists(out));
}

// Checkpoints and the tensor files they are made of: round trips, every kind of damage refused
// with one IOError naming the file, checkpoints of the old format converted by `sbgm upgrade`.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/serialize/output-archive.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_harness.hpp"
#include "sbgm/io/tensor_file.hpp"
#include "sbgm/run/checkpoint.hpp"
#include "sbgm/util/error.hpp"

namespace fs = std::filesystem;
using namespace sbgm;

namespace {

TensorFile sample_file() {
  TensorFile f;
  f.metadata["format"] = "test";
  f.metadata["note"] = "quotes \" and \\ and\nnewlines, non-ASCII \xc3\xa9";
  f.tensors["a"] = at::arange(6, at::kFloat).reshape({2, 3});
  f.tensors["b"] = at::arange(5, at::kDouble) * 0.5;
  f.tensors["count"] = at::scalar_tensor(int64_t{42}, at::kLong);
  f.tensors["empty"] = at::empty({0, 4}, at::kFloat);
  f.tensors["bytes"] = at::arange(7, at::kByte);
  f.tensors["strided"] = at::arange(12, at::kInt).reshape({3, 4}).t();  // not contiguous
  return f;
}

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A file whose header is the given JSON and whose data is the given bytes.
std::string crafted(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_tensor_file(bytes, "crafted");
  } catch (const IOError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TensorFile, RoundTripsEveryTensorAndTheMetadata) {
  const fs::path p = scratch() / "round.safetensors";
  const TensorFile f = sample_file();
  write_tensor_file(p.string(), f);
  const TensorFile g = read_tensor_file(p.string());
  for (const auto& [key, value] : f.metadata) EXPECT_EQ(g.metadata.at(key), value);
  EXPECT_EQ(g.metadata.count("crc32"), 1u);
  ASSERT_EQ(g.tensors.size(), f.tensors.size());
  for (const auto& [name, t] : f.tensors) {
    const at::Tensor& u = g.tensors.at(name);
    EXPECT_EQ(u.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(u.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(u, t)) << name;
  }
  // The layout is safetensors': 8-byte length, JSON, data 8-byte aligned.
  const std::string bytes = file_bytes(p);
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  EXPECT_EQ(header % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_TRUE(looks_like_tensor_file(bytes));
}

TEST(TensorFile, RoundTripsWithNumPy) {
  // The header is plain JSON and the data raw little-endian bytes: NumPy reads them unaided.
  const fs::path p = scratch() / "numpy.safetensors", script = scratch() / "read_tensor_file.py";
  write_tensor_file(p.string(), sample_file());
  std::ofstream(script) << R"(import json, struct, sys
import numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = raw[8 + n:]
e = h['a']
a = np.frombuffer(data[e['data_offsets'][0]:e['data_offsets'][1]], '<f4').reshape(e['shape'])
assert (a == np.arange(6, dtype=np.float32).reshape(2, 3)).all()
e = h['strided']
s = np.frombuffer(data[e['data_offsets'][0]:e['data_offsets'][1]], '<i4').reshape(e['shape'])
assert (s == np.arange(12).reshape(3, 4).T).all()
assert h['__metadata__']['format'] == 'test'
)";
  EXPECT_EQ(run_python(script.string() + " " + p.string()), 0);
}

TEST(TensorFile, EverySingleBitFlipAndEveryTruncationIsRefused) {
  const fs::path p = scratch() / "flips.safetensors";
  TensorFile f;
  f.metadata["config"] = "[model]\nwidth = 8\n";
  f.tensors["w"] = at::arange(16, at::kFloat);
  f.tensors["n"] = at::scalar_tensor(int64_t{3}, at::kLong);
  write_tensor_file(p.string(), f);
  const std::string good = file_bytes(p);
  ASSERT_NO_THROW(parse_tensor_file(good, "good"));
  int accepted = 0;
  for (size_t i = 0; i < good.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      if (error_of(bad).empty()) {
        ++accepted;
        ADD_FAILURE() << "a flip of bit " << bit << " of byte " << i << " was accepted";
      }
    }
  EXPECT_EQ(accepted, 0);
  for (size_t n = 0; n < good.size(); ++n) accepted += error_of(good.substr(0, n)).empty();
  EXPECT_EQ(accepted, 0);
  EXPECT_NE(error_of(good + "x").find("padded"), std::string::npos);
}

TEST(TensorFile, CraftedHeadersAreRefusedBeforeAnyAllocation) {
  const auto e = [](const std::string& header, const std::string& data = "") { return error_of(crafted(header, data)); };
  EXPECT_NE(error_of("short").find("too short"), std::string::npos);
  std::string huge(16, '{');
  const uint64_t n = uint64_t{1} << 62;
  std::memcpy(huge.data(), &n, 8);
  EXPECT_NE(error_of(huge).find("exceeds the file"), std::string::npos);
  EXPECT_NE(e("[1, 2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(e("{\"a\": ").find("not a JSON object"), std::string::npos);
  EXPECT_NE(e(std::string(100000, '[')).find("not a JSON object"), std::string::npos);  // deep nesting
  const std::string entry = R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  EXPECT_NE(e("{\"a\": " + entry + ", \"a\": " + entry + "}", std::string(8, '\0')).find("repeated"), std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}})", std::string(8, '\0')).find("unknown dtype"),
            std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", std::string(8, '\0')).find("non-negative"),
            std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", std::string(8, '\0')).find("non-negative"),
            std::string::npos);
  // Sizes whose product overflows 64 bits, or that promise more than the file holds.
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904], "data_offsets": [0, 8]}})",
              std::string(8, '\0'))
                .find("too large"),
            std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [1000000000], "data_offsets": [0, 4000000000]}})", std::string(8, '\0'))
                .find("byte range"),
            std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4, 0], "data_offsets": [0, 0]}})").find("too large"),
            std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", std::string(12, '\0')).find("gaps"),
            std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
              std::string(8, '\0'))
                .find("byte range"),
            std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}})", std::string(8, '\0'))
                .find("expected dtype"),
            std::string::npos);
  EXPECT_NE(e(R"({"__metadata__": {"k": 1}})").find("not a string"), std::string::npos);
  EXPECT_NE(e(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", std::string(8, '\0')).find("no checksum"),
            std::string::npos);
  EXPECT_NE(e(R"({"__metadata__": {"crc32": "12345678"}})").find("checksum does not match"), std::string::npos);
  EXPECT_THROW(read_tensor_file((scratch() / "absent.safetensors").string()), IOError);
}

// A checkpoint as sbgm wrote it before format 2: a LibTorch archive.
void write_legacy_checkpoint(const Checkpoint& c, const std::string& path) {
  torch::serialize::OutputArchive out;
  const std::string config = c.config.to_toml();
  at::Tensor text = at::empty({static_cast<int64_t>(config.size())}, at::kByte);
  std::memcpy(text.data_ptr(), config.data(), config.size());
  out.write("format_version", at::tensor(int64_t{1}));
  out.write("config", text);
  out.write("data_shape", at::tensor(c.data_shape, at::kLong));
  out.write("cond_dim", at::tensor(c.cond_dim));
  out.write("scaling_shift", c.scaling.shift);
  out.write("scaling_scale", c.scaling.scale);
  out.write("params", c.state.params);
  out.write("ema", c.state.ema);
  out.write("exp_avg", c.state.exp_avg);
  out.write("exp_avg_sq", c.state.exp_avg_sq);
  out.write("step", at::tensor(c.state.step));
  out.write("rng_state", c.state.rng_state);
  out.write("buffer_count", at::tensor(static_cast<int64_t>(c.buffers.size())));
  for (size_t i = 0; i < c.buffers.size(); ++i) {
    out.write("buffer_" + std::to_string(i), c.buffers[i]);
    out.write("ema_buffer_" + std::to_string(i), c.ema_buffers[i]);
  }
  out.save_to(path);
}

TEST(CheckpointFile, DamageAndOldFormatsAreOneLineAndUpgradeConverts) {
  const fs::path run = scratch() / "upgrade";
  ASSERT_EQ(sbgm_cli("train --dataset moons --out " + run.string() +
                     " --steps 12 --batch-size 16 --threads 1 --model.width 8 --sample.n 10 --sample.steps 3")
                .code,
            0);
  const fs::path file = run / "checkpoint.safetensors";
  const Checkpoint c = load_checkpoint(run.string());
  EXPECT_EQ(c.state.step, 12);

  // One flipped bit in the weights: the checksum refuses the file, for inference and resuming.
  const std::string good = file_bytes(file);
  std::string bad = good;
  bad[bad.size() - 5] = static_cast<char>(bad[bad.size() - 5] ^ 4);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bad;
  expect_one_line_error(sbgm_cli("info --checkpoint " + run.string()), "checksum does not match");
  expect_one_line_error(sbgm_cli("train --out " + run.string() + " --resume --steps 20 --threads 1"), "checksum does not match");

  // A file with only the model part samples but does not resume.
  TensorFile model_only = parse_tensor_file(good, "good");
  for (auto it = model_only.tensors.begin(); it != model_only.tensors.end();)
    it = it->first.rfind("train.", 0) == 0 ? model_only.tensors.erase(it) : std::next(it);
  model_only.metadata.erase("crc32");
  write_tensor_file(file.string(), model_only);
  EXPECT_EQ(sbgm_cli("sample --checkpoint " + run.string() + " --n 5 --steps 3 --out " + (scratch() / "mo.npy").string()).code, 0);
  expect_one_line_error(sbgm_cli("sample --raw-weights --checkpoint " + run.string() + " --n 5 --out " + (scratch() / "mo2.npy").string()),
                        "no raw weights");
  expect_one_line_error(sbgm_cli("train --out " + run.string() + " --resume --steps 20 --threads 1"), "no training state");

  // The old format: refused with the way out, which converts it.
  fs::remove(file);
  write_legacy_checkpoint(c, (run / "checkpoint.pt").string());
  expect_one_line_error(sbgm_cli("info --checkpoint " + run.string()), "sbgm upgrade");
  expect_one_line_error(sbgm_cli("info --checkpoint " + (run / "checkpoint.pt").string()), "sbgm upgrade");
  const CliResult up = sbgm_cli("upgrade " + run.string());
  ASSERT_EQ(up.code, 0) << up.err;
  EXPECT_TRUE(fs::exists(run / "checkpoint.pt"));
  const Checkpoint u = load_checkpoint(run.string());
  EXPECT_TRUE(at::equal(u.state.params, c.state.params));
  EXPECT_TRUE(at::equal(u.state.ema, c.state.ema));
  EXPECT_TRUE(at::equal(u.scaling.scale, c.scaling.scale));
  EXPECT_EQ(u.state.step, 12);
  EXPECT_EQ(sbgm_cli("train --out " + run.string() + " --resume --steps 14 --threads 1 --sample.n 10").code, 0);
  std::ofstream(scratch() / "junk.pt") << "PK\x03\x04 not really an archive";
  expect_one_line_error(sbgm_cli("upgrade " + (scratch() / "junk.pt").string()), "not a readable sbgm checkpoint");
}

// A key added after a run was written has, for that run, the meaning it had before: a posterior
// run on the VE path settles model.input_scaling to unit now, but its checkpoint read without
// the key (as a file written before it existed) has none, and loads, samples and resumes as such.
TEST(CheckpointFile, AKeyTheFileDoesNotNameKeepsItsOldMeaning) {
  const fs::path run = scratch() / "before_input_scaling";
  const fs::path theta = scratch() / "theta_is.npy", x = scratch() / "x_is.npy";
  ASSERT_EQ(run_python("-c \"import numpy as np; r = np.random.default_rng(0); t = r.normal(size=(200, 2)); "
                       "np.save('" + theta.string() + "', t); np.save('" + x.string() + "', t + 0.1 * r.normal(size=(200, 2)))\""),
            0);
  ASSERT_EQ(sbgm_cli("train --data " + theta.string() + " --cond " + x.string() + " --out " + run.string() +
                     " --steps 12 --batch-size 16 --threads 1 --model.width 8 --model.baseline none --sample.n 10 --sample.steps 3")
                .code,
            0);
  EXPECT_EQ(load_checkpoint(run.string()).config.model.input_scaling, InputScaling::Unit);
  const fs::path file = run / "checkpoint.safetensors";
  TensorFile f = parse_tensor_file(file_bytes(file), "checkpoint");
  std::string& config = f.metadata.at("config");
  const auto at = config.find("input_scaling = \"unit\"\n");
  ASSERT_NE(at, std::string::npos) << config;
  config.erase(at, std::string("input_scaling = \"unit\"\n").size());
  // data.transform too: a file without it models its data as they are.
  const auto transform = config.find("\ntransform = \"none\"\n");
  ASSERT_NE(transform, std::string::npos) << config;
  config.erase(transform + 1, std::string("transform = \"none\"\n").size());
  f.metadata.erase("crc32");
  write_tensor_file(file.string(), f);
  EXPECT_EQ(load_checkpoint(run.string()).config.model.input_scaling, InputScaling::None);
  EXPECT_EQ(load_checkpoint(run.string()).config.data.transform, FeatureTransform::None);
  EXPECT_EQ(sbgm_cli("sample --checkpoint " + run.string() + " --cond " + x.string() + " --n 5 --out " +
                     (scratch() / "is.npy").string()).code, 0);
  EXPECT_EQ(sbgm_cli("train --out " + run.string() + " --resume --steps 14 --threads 1 --sample.n 10").code, 0);
  EXPECT_EQ(load_checkpoint(run.string()).config.model.input_scaling, InputScaling::None);
}

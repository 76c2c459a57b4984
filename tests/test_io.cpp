// .npy and CSV files: round trips with NumPy, and every malformed file rejected with a message.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sbgm/data/dataset.hpp"
#include "sbgm/io/atomic_file.hpp"
#include "sbgm/io/npy.hpp"
#include "sbgm/io/npz.hpp"
#include "error_of.hpp"
#include "scratch_dir.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;
namespace fs = std::filesystem;

namespace {

int python(const std::string& code) {
  const fs::path script = scratch_root() / "script.py";
  std::ofstream(script) << code;
  return std::system((std::string(SBGM_PYTHON) + " " + script.string()).c_str());
}

void write_bytes(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

}  // namespace

TEST(Npy, RoundTripWithNumPy) {
  const fs::path dir = scratch_root();
  // NumPy writes float32 and float64 arrays of several ranks; we read them, write them back, and
  // NumPy checks that what we wrote equals what it wrote.
  ASSERT_EQ(python("import numpy as np\n"
                   "rng = np.random.default_rng(0)\n"
                   "np.save('" + (dir / "a32.npy").string() + "', rng.normal(size=(7, 3)).astype(np.float32))\n"
                   "np.save('" + (dir / "a64.npy").string() + "', rng.normal(size=(2, 3, 4)))\n"
                   "np.save('" + (dir / "a1.npy").string() + "', np.arange(5, dtype=np.float32))\n"),
            0);
  for (const char* name : {"a32", "a64", "a1"}) {
    const at::Tensor t = read_npy((dir / (std::string(name) + ".npy")).string(), /*keep_double=*/true);
    write_npy((dir / (std::string(name) + "_back.npy")).string(), t);
  }
  EXPECT_EQ(read_npy((dir / "a64.npy").string(), true).scalar_type(), at::kDouble);
  EXPECT_EQ(read_npy((dir / "a64.npy").string()).scalar_type(), at::kFloat);
  EXPECT_EQ(read_npy((dir / "a1.npy").string()).sizes(), (std::vector<int64_t>{5}));
  EXPECT_EQ(python("import numpy as np, sys\n"
                   "for n in ['a32', 'a64', 'a1']:\n"
                   "    a = np.load('" + dir.string() + "/' + n + '.npy')\n"
                   "    b = np.load('" + dir.string() + "/' + n + '_back.npy')\n"
                   "    sys.exit(1) if (a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b)) else None\n"),
            0);
}

// Masks, labels and 8-bit images come as bool and integers: read exactly, as floats.
TEST(Npy, ReadsBooleanAndIntegerArraysAsFloats) {
  const fs::path dir = scratch_root();
  ASSERT_EQ(python("import numpy as np\n"
                   "np.save('" + (dir / "b.npy").string() + "', np.array([[True, False], [False, True]]))\n"
                   "for t in ['uint8', 'int8', 'int16', 'int32', 'int64']:\n"
                   "    np.save('" + dir.string() + "/' + t + '.npy', (np.arange(6) * 37 % 200 - (0 if t == 'uint8' else 100)).astype(t).reshape(2, 3))\n"),
            0);
  EXPECT_TRUE(at::equal(read_npy((dir / "b.npy").string()), at::tensor({1.0f, 0.0f, 0.0f, 1.0f}).reshape({2, 2})));
  const at::Tensor base = (at::arange(6, at::kLong) * 37).remainder(200);
  for (const char* t : {"uint8", "int8", "int16", "int32", "int64"}) {
    const at::Tensor want = (std::string(t) == "uint8" ? base : base - 100).to(at::kDouble).reshape({2, 3});
    const at::Tensor got = read_npy((dir / (std::string(t) + ".npy")).string(), true);
    EXPECT_EQ(got.scalar_type(), at::kDouble) << t;
    EXPECT_TRUE(at::equal(got, want)) << t;
  }
}

TEST(Npy, RejectsMalformedFiles) {
  const fs::path dir = scratch_root();
  write_npy((dir / "good.npy").string(), at::arange(12, at::kFloat).reshape({4, 3}));
  std::ifstream in(dir / "good.npy", std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  write_bytes(dir / "truncated.npy", good.substr(0, good.size() - 5));
  EXPECT_NE(error_of([&] { read_npy((dir / "truncated.npy").string()); }).find("truncated"), std::string::npos);
  write_bytes(dir / "short_header.npy", good.substr(0, 20));
  EXPECT_NE(error_of([&] { read_npy((dir / "short_header.npy").string()); }).find("truncated"), std::string::npos);
  write_bytes(dir / "magic.npy", "PK\x03\x04 not numpy at all");
  EXPECT_NE(error_of([&] { read_npy((dir / "magic.npy").string()); }).find("not a .npy"), std::string::npos);
  std::string complex_file = good;
  complex_file.replace(complex_file.find("<f4"), 3, "<c8");
  write_bytes(dir / "complex.npy", complex_file);
  EXPECT_NE(error_of([&] { read_npy((dir / "complex.npy").string()); }).find("dtype"), std::string::npos);
  std::string big_endian = good;
  big_endian.replace(big_endian.find("<f4"), 3, ">f4");
  write_bytes(dir / "big_endian.npy", big_endian);
  EXPECT_NE(error_of([&] { read_npy((dir / "big_endian.npy").string()); }).find("dtype"), std::string::npos);
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  write_bytes(dir / "fortran.npy", fortran);
  EXPECT_NE(error_of([&] { read_npy((dir / "fortran.npy").string()); }).find("Fortran"), std::string::npos);
  EXPECT_NE(error_of([&] { read_npy((dir / "missing.npy").string()); }).find("cannot open"), std::string::npos);
}

// np.savez (stored) and np.savez_compressed (deflated) archives read back exactly, any dtype the
// .npy reader takes becoming float64; malformed archives are rejected naming the member.
TEST(Npz, ReadsNumPyArchives) {
  const fs::path dir = scratch_root();
  ASSERT_EQ(python("import numpy as np\n"
                   "rng = np.random.default_rng(1)\n"
                   "a, b = rng.normal(size=(3, 4)), rng.normal(size=(5,)).astype(np.float32)\n"
                   "np.savez('" + (dir / "stored.npz").string() + "', a=a, b=b)\n"
                   "np.savez_compressed('" + (dir / "deflated.npz").string() + "', a=a, b=b)\n"
                   "np.save('" + (dir / "a.npy").string() + "', a)\n"
                   "np.save('" + (dir / "b.npy").string() + "', b)\n"
                   "np.savez('" + (dir / "ints.npz").string() + "', a=np.arange(3))\n"
                   "np.savez('" + (dir / "complex.npz").string() + "', a=np.ones(3, dtype=np.complex64))\n"),
            0);
  const at::Tensor a = read_npy((dir / "a.npy").string(), true), b = read_npy((dir / "b.npy").string(), true);
  for (const char* name : {"stored.npz", "deflated.npz"}) {
    const auto arrays = read_npz((dir / name).string());
    ASSERT_EQ(arrays.size(), 2u) << name;
    EXPECT_TRUE(at::equal(arrays.at("a"), a)) << name;
    EXPECT_EQ(arrays.at("b").scalar_type(), at::kDouble);
    EXPECT_TRUE(at::equal(arrays.at("b"), b.to(at::kDouble))) << name;
  }
  EXPECT_TRUE(at::equal(read_npz((dir / "ints.npz").string()).at("a"), at::arange(3, at::kDouble)));
  EXPECT_NE(error_of([&] { read_npz((dir / "complex.npz").string()); }).find("complex.npz:a.npy: unsupported dtype"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_npz((dir / "a.npy").string()); }).find("not a .npz"), std::string::npos);
  EXPECT_NE(error_of([&] { read_npz((dir / "missing.npz").string()); }).find("cannot open"), std::string::npos);
}

TEST(DataFiles, ChecksRankAndFiniteness) {
  const fs::path dir = scratch_root();
  write_npy((dir / "rank1.npy").string(), at::ones({5}));
  EXPECT_NE(error_of([&] { load_data_file((dir / "rank1.npy").string()); }).find("rank 1"), std::string::npos);
  at::Tensor bad = at::ones({4, 2});
  bad[2][1] = std::nan("");
  write_npy((dir / "nan.npy").string(), bad);
  EXPECT_NE(error_of([&] { load_data_file((dir / "nan.npy").string()); }).find("row 2"), std::string::npos);
  std::ofstream(dir / "data.json") << "{\"x\": [1, 2]}\n";
  EXPECT_NE(error_of([&] { load_data_file((dir / "data.json").string()); }).find("unknown data format"), std::string::npos);
  EXPECT_NE(error_of([&] { load_data_file((dir / "missing.json").string()); }).find("cannot open"), std::string::npos);
}

TEST(DataFiles, ReadsCsvWithOptionalHeader) {
  const fs::path dir = scratch_root();
  std::ofstream(dir / "h.csv") << "x,y\n1,2\n3.5,-4e-1\n\n";
  const at::Tensor t = read_csv((dir / "h.csv").string());
  EXPECT_EQ(t.scalar_type(), at::kDouble);  // read_csv keeps full precision; load_data_file gives float32
  EXPECT_TRUE(at::allclose(t, at::tensor({1.0, 2.0, 3.5, -0.4}).reshape({2, 2})));
  std::ofstream(dir / "ragged.csv") << "1,2\n3\n";
  EXPECT_NE(error_of([&] { read_csv((dir / "ragged.csv").string()); }).find(":2: expected 2 columns"), std::string::npos);
  std::ofstream(dir / "text.csv") << "1,2\n3,abc\n";
  EXPECT_NE(error_of([&] { read_csv((dir / "text.csv").string()); }).find(":2: not a row of numbers"), std::string::npos);
}

// Atomic writes: the content lands whole, a failed write leaves the old file and no temporary
// file and names the reason, and temporary files of dead processes are cleaned up.
TEST(AtomicFile, WritesWholeAndFailsCleanly) {
  const fs::path dir = scratch_root() / "atomic";
  fs::create_directories(dir);
  const fs::path file = dir / "f.bin";
  write_bytes_atomically(file.string(), "first");
  write_file_atomically(file.string(), [](std::ostream& out) { out << "second"; });
  std::ifstream in(file);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "second");

  // A write the system refuses (a file-size limit, as a full disk would): one IOError with the
  // reason, the old content kept, nothing left behind.
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string message = error_of([&] { write_bytes_atomically(file.string(), std::string(100000, 'x')); });
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find("f.bin: cannot write: File too large"), std::string::npos) << message;
  std::ifstream again(file);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(again), {}), "second");
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "f.bin");
  EXPECT_NE(error_of([&] { write_bytes_atomically((dir / "no" / "such.bin").string(), "x"); })
                .find("No such file or directory"),
            std::string::npos);

  // Stale temporary files: a dead process's is removed, a live one's (ours) kept.
  write_bytes(dir / "g.npy.tmp.999999999", "stale");
  const fs::path live = dir / ("h.npy.tmp." + std::to_string(::getpid()));
  write_bytes(live, "in progress");
  write_bytes(dir / "notes.tmp.txt", "not a temporary file of ours");
  EXPECT_EQ(remove_stale_temporary_files(dir.string()), 1);
  EXPECT_FALSE(fs::exists(dir / "g.npy.tmp.999999999"));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(dir / "notes.tmp.txt"));
}

// Findings of the hardening review (issue 25), each a regression test: lenient .npy headers,
// files that declare far more data than they hold, decompression bombs, rows too wide, values
// beyond float32's arithmetic. Each is one IOError naming the file, before any large allocation.
TEST(HostileFiles, NpyHeadersAreParsedStrictly) {
  const fs::path dir = scratch_root();
  write_npy((dir / "good.npy").string(), at::arange(20, at::kFloat).reshape({10, 2}));
  std::ifstream in(dir / "good.npy", std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto with_shape = [&](const std::string& shape) {
    std::string s = good;
    const size_t at = s.find("(10, 2)");
    s.replace(at, 7, shape + std::string(7 - std::min<size_t>(7, shape.size()), ' '));
    return s;
  };
  const auto error_for = [&](const std::string& bytes) {
    write_bytes(dir / "crafted.npy", bytes);
    return error_of([&] { read_npy((dir / "crafted.npy").string()); });
  };
  EXPECT_NE(error_for(with_shape("(10.9,")).find("malformed .npy header"), std::string::npos);
  EXPECT_NE(error_for(with_shape("(10 2)")).find("malformed .npy header"), std::string::npos);
  EXPECT_NE(error_for(with_shape("(-1, 2)")).find("malformed .npy header"), std::string::npos);
  std::string twice = good;
  twice.replace(twice.find("'shape'"), 7, "'descr'");
  EXPECT_NE(error_for(twice).find("appears twice"), std::string::npos);
  // A 100-byte file that declares 10^18 values: refused from its size, nothing allocated.
  std::string huge = good;
  huge.replace(huge.find("(10, 2)"), 7, "(1000000000, 1000000000)");
  huge.erase(huge.find('\n') - 17, 17);  // keep the header's declared length
  EXPECT_NE(error_for(huge).find("truncated .npy data"), std::string::npos);
  // An overflowing product of sizes.
  std::string overflow = good;
  overflow.replace(overflow.find("(10, 2)"), 7, "(4294967296, 4294967296, 4294967296)");
  overflow.erase(overflow.find('\n') - 29, 29);
  EXPECT_NE(error_for(overflow).find("a shape too large"), std::string::npos);
  EXPECT_NE(error_for(with_shape("(99999999999999999999999,")).find("too large"), std::string::npos);
  // Found by fuzz/fuzz_npy.cpp: an empty array (a size 0) whose other sizes overflow 64 bits
  // reached LibTorch's allocator, which threw its own error.
  std::string empty = good;
  empty.replace(empty.find("(10, 2)"), 7, "(4000000000000000000, 21, 0, 22)");
  empty.erase(empty.find('\n') - 25, 25);
  EXPECT_NE(error_for(empty).find("a shape too large"), std::string::npos);
  EXPECT_TRUE(at::equal(read_npy((dir / "good.npy").string()), at::arange(20, at::kFloat).reshape({10, 2})));
}

TEST(HostileFiles, NpzArchivesCannotDeclareMoreThanTheyHold) {
  const fs::path dir = scratch_root();
  // Archives patched after writing: a stored member and a deflated one each claiming 3.5 GB,
  // and a second directory entry pointing at the first member's data (overlapping members).
  ASSERT_EQ(python("import numpy as np, struct, zipfile\n"
                   "d = '" + dir.string() + "/'\n"
                   "def patch(src, dst, size):\n"
                   "    b = bytearray(open(src, 'rb').read())\n"
                   "    local = b.find(b'PK\\x03\\x04'); central = b.find(b'PK\\x01\\x02')\n"
                   "    struct.pack_into('<I', b, local + 22, size); struct.pack_into('<I', b, central + 24, size)\n"
                   "    open(dst, 'wb').write(bytes(b))\n"
                   "np.savez(d + 'stored.npz', a=np.zeros(4))\n"
                   "np.savez_compressed(d + 'deflated.npz', a=np.zeros(4))\n"
                   "patch(d + 'stored.npz', d + 'big_stored.npz', 3500000000)\n"
                   "patch(d + 'deflated.npz', d + 'big_deflated.npz', 3500000000)\n"
                   "b = open(d + 'deflated.npz', 'rb').read()\n"
                   "c = b.find(b'PK\\x01\\x02'); e = b.find(b'PK\\x05\\x06')\n"
                   "entry = b[c:e]\n"
                   "second = entry.replace(b'a.npy', b'b.npy')\n"
                   "end = bytearray(b[e:])\n"
                   "struct.pack_into('<HH', end, 8, 2, 2); struct.pack_into('<I', end, 12, 2 * len(entry))\n"
                   "open(d + 'overlap.npz', 'wb').write(b[:e] + second + bytes(end))\n"),
            0);
  for (const char* name : {"big_stored.npz", "big_deflated.npz", "overlap.npz"}) {
    const std::string why = error_of([&] { read_npz((dir / name).string()); });
    EXPECT_NE(why.find(name), std::string::npos) << why;
  }
  // The user's limit applies to what is declared.
  ::setenv("SBGM_MAX_READ_BYTES", "100", 1);
  const std::string limited = error_of([&] { read_npz((dir / "stored.npz").string()); });
  ::unsetenv("SBGM_MAX_READ_BYTES");
  EXPECT_NE(limited.find("SBGM_MAX_READ_BYTES"), std::string::npos) << limited;
  EXPECT_EQ(read_npz((dir / "stored.npz").string()).at("a").numel(), 4);
}

TEST(HostileFiles, IdxHeadersAreCheckedBeforeDecompressing) {
  const fs::path dir = scratch_root();
  // A gzip file whose IDX header declares 2^32 x 2^32 x 2^32 doubles, and one declaring 1 GB of
  // bytes while holding 400: each refused from the header.
  ASSERT_EQ(python("import gzip, struct\n"
                   "d = '" + dir.string() + "/'\n"
                   "open(d + 'bomb.idx.gz', 'wb').write(gzip.compress(bytes([0, 0, 0x0E, 3]) + struct.pack('>III', 4294967295, 4294967295, 4294967295)))\n"
                   "open(d + 'liar.idx.gz', 'wb').write(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack('>I', 1000000000) + bytes(400)))\n"
                   "open(d + 'liar.idx', 'wb').write(bytes([0, 0, 8, 1]) + struct.pack('>I', 1000000000) + bytes(400))\n"),
            0);
  for (const char* name : {"bomb.idx.gz", "liar.idx.gz", "liar.idx"}) {
    const std::string why = error_of([&] { load_data_file((dir / name).string()); });
    EXPECT_NE(why.find("declares more data than the file can hold"), std::string::npos) << why;
  }
}

TEST(HostileFiles, WideCsvRowsAndHugeValuesAreRefused) {
  const fs::path dir = scratch_root();
  {
    std::ofstream wide(dir / "wide.csv");
    for (int i = 0; i < 70000; ++i) wide << (i ? ",1" : "1");
    wide << "\n";
  }
  EXPECT_NE(error_of([&] { read_csv((dir / "wide.csv").string()); }).find("70000 columns"), std::string::npos);
  write_npy((dir / "huge.npy").string(), at::full({4, 2}, 3e38f));
  EXPECT_NE(error_of([&] { load_data_file((dir / "huge.npy").string()); }).find("rescale"), std::string::npos);
}

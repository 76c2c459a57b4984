#include "sbgm/io/npz.hpp"

#include <ATen/ATen.h>
#include <sys/stat.h>
#include <zip.h>

#include <memory>
#include <sstream>
#include <vector>

#include "sbgm/io/npy.hpp"
#include "sbgm/io/read_limits.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

std::map<std::string, at::Tensor> read_npz(const std::string& path) {
  int error_code = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &error_code), &zip_discard);
  if (!archive) {
    if (error_code == ZIP_ER_NOENT || error_code == ZIP_ER_OPEN || error_code == ZIP_ER_READ)
      throw IOError(path + ": cannot open file");
    zip_error_t error;
    zip_error_init_with_code(&error, error_code);
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw IOError(path + ": not a .npz archive (" + why + ")");
  }
  // What the archive declares is checked against the archive before anything is decompressed:
  // members' compressed data cannot overlap or exceed the file, a member cannot expand by more
  // than DEFLATE can, and the whole must fit the read limit.
  struct stat file_stat {};
  if (::stat(path.c_str(), &file_stat) != 0) throw IOError(path + ": cannot open file");
  const auto archive_bytes = static_cast<uint64_t>(file_stat.st_size);
  const zip_int64_t members = zip_get_num_entries(archive.get(), 0);
  std::vector<zip_stat_t> stats(static_cast<size_t>(std::max<zip_int64_t>(members, 0)));
  uint64_t compressed = 0, expanded = 0;
  for (zip_int64_t i = 0; i < members; ++i) {
    zip_stat_t& st = stats[static_cast<size_t>(i)];
    const int needed = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_NAME;
    if (zip_stat_index(archive.get(), i, 0, &st) != 0 || (st.valid & needed) != needed)
      throw IOError(path + ": malformed .npz archive (member " + std::to_string(i) + ")");
    const std::string member = path + ":" + st.name;
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
      throw IOError(member + ": compressed with a method .npz files do not use");
    const bool fits = st.comp_method == ZIP_CM_STORE ? st.size == st.comp_size
                                                     : st.size <= st.comp_size * kMaxDeflateRatio + 1024;
    if (!fits || st.comp_size > archive_bytes)
      throw IOError(member + ": its declared size (" + std::to_string(st.size) + " bytes) cannot come from its " +
                    std::to_string(st.comp_size) + " compressed bytes");
    compressed += st.comp_size;
    expanded += st.size;
  }
  if (compressed > archive_bytes)
    throw IOError(path + ": malformed .npz archive (its members' data overlap or exceed the file)");
  check_read_size(expanded, path);

  std::map<std::string, at::Tensor> arrays;
  for (zip_int64_t i = 0; i < members; ++i) {
    const zip_stat_t& st = stats[static_cast<size_t>(i)];
    std::string name = st.name;
    const std::string member = path + ":" + name;
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0)
      throw IOError(member + ": an .npz member that is not a .npy array");
    const std::string key = name.substr(0, name.size() - 4);
    if (arrays.count(key)) throw IOError(member + ": the archive holds this member twice");
    std::string bytes(st.size, '\0');
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(zip_fopen_index(archive.get(), i, 0), &zip_fclose);
    if (!file || zip_fread(file.get(), bytes.data(), st.size) != static_cast<zip_int64_t>(st.size))
      throw IOError(member + ": cannot read the member (" + zip_strerror(archive.get()) + ")");
    std::istringstream in(bytes);
    arrays[key] = read_npy(in, member, /*keep_double=*/true).to(at::kDouble);
  }
  return arrays;
}

}  // namespace sbgm

#include "sbgm/io/npz.hpp"

#include <ATen/ATen.h>
#include <zip.h>

#include <memory>
#include <sstream>

#include "sbgm/io/npy.hpp"
#include "sbgm/util/error.hpp"

namespace sbgm {

std::map<std::string, at::Tensor> read_npz(const std::string& path) {
  int error_code = 0;
  std::unique_ptr<zip_t, decltype(&zip_discard)> archive(zip_open(path.c_str(), ZIP_RDONLY, &error_code), &zip_discard);
  if (!archive) {
    if (error_code == ZIP_ER_NOENT || error_code == ZIP_ER_OPEN || error_code == ZIP_ER_READ)
      throw IOError(path + ": cannot open file");
    zip_error_t error;
    zip_error_init_with_code(&error, error_code);
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw IOError(path + ": not a .npz archive (" + why + ")");
  }
  std::map<std::string, at::Tensor> arrays;
  const zip_int64_t members = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < members; ++i) {
    zip_stat_t st;
    if (zip_stat_index(archive.get(), i, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_NAME))
      throw IOError(path + ": malformed .npz archive (member " + std::to_string(i) + ")");
    std::string name = st.name;
    const std::string member = path + ":" + name;
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".npy") != 0)
      throw IOError(member + ": an .npz member that is not a .npy array");
    std::string bytes(st.size, '\0');
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(zip_fopen_index(archive.get(), i, 0), &zip_fclose);
    if (!file || zip_fread(file.get(), bytes.data(), st.size) != static_cast<zip_int64_t>(st.size))
      throw IOError(member + ": cannot read the member (" + zip_strerror(archive.get()) + ")");
    std::istringstream in(bytes);
    arrays[name.substr(0, name.size() - 4)] = read_npy(in, member, /*keep_double=*/true).to(at::kDouble);
  }
  return arrays;
}

}  // namespace sbgm

// sbgm._sbgm: the library's request API for Python. Arrays come in as C-contiguous float32 or
// float64 NumPy arrays (the Python layer converts and checks types) and go out as NumPy arrays,
// neither way copied; every long call
// releases the GIL and takes it back only to report progress, which is also where Ctrl-C is
// noticed: training then stops at the next report with a checkpoint, sampling and likelihoods
// stop by unwinding. Library errors become ValueError (a value the user gave) or OSError (a
// file), LibTorch's as RuntimeError or MemoryError, each with the CLI's one-line message.

#include <c10/util/Exception.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <ATen/ATen.h>
#include <torch/version.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sbgm/data/dataset.hpp"
#include "sbgm/data/gaussian_mixture.hpp"
#include "sbgm/likelihood/log_likelihood.hpp"
#include "sbgm/nets/net_config.hpp"
#include "sbgm/run/diagnose.hpp"
#include "sbgm/run/inpaint.hpp"
#include "sbgm/run/likelihood_request.hpp"
#include "sbgm/run/model.hpp"
#include "sbgm/run/sample_request.hpp"
#include "sbgm/run/training_run.hpp"
#include "sbgm/score/iid_score.hpp"
#include "sbgm/sde/sde.hpp"
#include "sbgm/util/error.hpp"
#include "sbgm/util/runtime.hpp"

namespace py = pybind11;

namespace {

// Arrays come in as C-contiguous float32 or float64 NumPy arrays: the Python layer converts
// anything else, and passes CPU torch tensors as NumPy views of their memory.
using Array = py::array;

// The array's memory as a tensor, not copied: the call's reference keeps the array alive while
// the GIL is released, and the library never writes to its inputs (python/tests/test_torch.py).
at::Tensor as_tensor(const Array& a) {
  const bool is_float = a.dtype().is(py::dtype::of<float>());
  if (!is_float && !a.dtype().is(py::dtype::of<double>()))
    throw sbgm::InvalidArgument("arrays must be float32 or float64 (the sbgm package converts them)");
  if (!(a.flags() & py::array::c_style))
    throw sbgm::InvalidArgument("arrays must be C-contiguous (the sbgm package makes them so)");
  const std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  return at::from_blob(const_cast<void*>(a.data()), shape, at::TensorOptions().dtype(is_float ? at::kFloat : at::kDouble));
}

at::Tensor optional_tensor(const std::optional<Array>& a) { return a ? as_tensor(*a) : at::Tensor(); }

// A tensor as a NumPy array of float32 or float64 (its own type; anything else as float64) that
// shares the tensor's memory: the array's base owns the tensor.
py::array to_numpy(const at::Tensor& tensor) {
  at::Tensor t = tensor.cpu().contiguous();
  if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble) t = t.to(at::kDouble);
  const std::vector<py::ssize_t> shape(t.sizes().begin(), t.sizes().end());
  const py::dtype dtype = t.scalar_type() == at::kFloat ? py::dtype::of<float>() : py::dtype::of<double>();
  void* data = t.data_ptr();
  py::capsule owner(new at::Tensor(std::move(t)), [](void* p) { delete static_cast<at::Tensor*>(p); });
  return py::array(dtype, shape, data, owner);
}

// A Python progress callable (done, total) as the library's ProgressFn, called with the GIL held.
// A pending Ctrl-C (or any exception the callable raises) unwinds the library's work.
sbgm::ProgressFn progress_fn(const std::optional<py::function>& report) {
  return [report](int64_t done, int64_t total) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (report) (*report)(done, total);
  };
}

// The settings library errors name as {key} (util/error.hpp), as this package's keywords call
// them: a request's parameter by its keyword argument, a config key as the config's key.
std::string keyword_for(const std::string& key) {
  if (key == "lambda") return "lam";
  if (key == "data.cond") return "cond";
  if (key == "data.file" || key == "data.dataset") return "data";
  return key;
}

// LibTorch's messages on one line, an allocation failure said plainly (as the CLI says them).
std::string library_error_line(const std::string& what) {
  if (what.find("not enough memory") != std::string::npos || what.find("you tried to allocate ") != std::string::npos)
    return "out of memory";
  return what.substr(0, what.find('\n'));
}

// sbgm flushes denormals to zero in its hot loops (util/runtime.hpp), on its worker threads and
// on the thread that calls it. In a Python process that thread is the interpreter's, whose NumPy
// must keep IEEE semantics: the flag is set for the duration of a call only.
class FlushDenormals {
 public:
#if defined(__SSE__)
  FlushDenormals() : saved_(_mm_getcsr()) { at::globalContext().setFlushDenormal(true); }
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#else
  FlushDenormals() { at::globalContext().setFlushDenormal(true); }
  ~FlushDenormals() { at::globalContext().setFlushDenormal(false); }
#endif
};

// work(progress) run without the GIL and with denormals flushed, progress reporting to the
// Python callable (with the GIL, where Ctrl-C is noticed).
template <class Work>
auto released(const std::optional<py::function>& progress, Work&& work) {
  const sbgm::ProgressFn report = progress_fn(progress);
  py::gil_scoped_release release;
  FlushDenormals flush;
  return work(report);
}

// The ODE range (low, high) of the few-step solvers on a plug-in reverse SDE, or none.
using OdeRange = std::optional<std::pair<double, double>>;

// The sampler options every sampling call takes: steps (0: the run's), lambda (none: the run's or
// the sampler's own) and the few-step solvers' schedule, eta, order and ODE range.
sbgm::SamplerOptions sampler_options(int64_t steps, const std::optional<double>& lambda, const std::string& schedule,
                                     double eta, int64_t order, const OdeRange& ode_range) {
  sbgm::SamplerOptions options;
  options.steps = steps;
  options.lambda = lambda;
  options.multistep.schedule = sbgm::step_schedule_from_string(schedule);
  options.multistep.eta = eta;
  options.multistep.order = order;
  options.multistep.ode_range = ode_range;
  return options;
}

// A model with the calls Python makes of it.
class PyModel {
 public:
  explicit PyModel(sbgm::Model model) : model_(std::move(model)) {}

  // The samples, their log-densities and standard errors (None unless asked for), how they met the
  // model's support (one line, empty if every first draw was inside) and the samples moved onto
  // the box.
  py::tuple sample(const std::string& kind, int64_t n, const std::optional<Array>& cond, uint64_t seed,
                   const std::string& sampler, int64_t steps, const std::optional<double>& lambda,
                   const std::string& schedule, double eta, int64_t order, const OdeRange& ode_range, double guidance,
                   int64_t set_orders,
                   int64_t iid_draws, const std::string& iid_method, bool log_prob, const std::string& divergence,
                   int64_t probes, const std::optional<int64_t>& support_draws,
                   const std::optional<py::function>& progress) {
    sbgm::SampleRequest request;
    request.kind = kind == "map"   ? sbgm::SampleRequest::Kind::Modes
                   : kind == "iid" ? sbgm::SampleRequest::Kind::IIDPosterior
                                   : sbgm::SampleRequest::Kind::Samples;
    request.n = n;
    request.cond = optional_tensor(cond);
    request.seed = seed;
    request.sampler = sampler;
    request.steps_given = steps != 0;
    request.sampling = sampler_options(steps, lambda, schedule, eta, order, ode_range);
    request.iid.method = sbgm::iid_method_from_string(iid_method);
    request.iid.covariance_samples = iid_draws;
    if (request.kind == sbgm::SampleRequest::Kind::Modes) request.mode.starts = n;
    request.score.guidance = guidance;
    request.score.set_orders = set_orders;
    request.log_prob = log_prob;
    request.divergence = sbgm::divergence_from_string(divergence);
    request.probes = probes;
    request.support_draws = support_draws;
    const sbgm::SampleReport report = released(progress, [&](const sbgm::ProgressFn& progress_of) {
      return sbgm::run_sample_request(model_, request, progress_of);
    });
    const auto optional_array = [](const at::Tensor& t) -> py::object {
      return t.defined() ? py::object(to_numpy(t)) : py::object(py::none());
    };
    return py::make_tuple(to_numpy(report.samples), optional_array(report.log_prob),
                          optional_array(report.log_prob_std_error), report.support.summary(), report.support.clamped);
  }

  py::tuple log_prob(const Array& x, const std::optional<Array>& cond, uint64_t seed, double rtol, double atol,
                     const std::string& divergence, int64_t probes, int64_t chunk, const std::string& bound,
                     int64_t draws, bool bits_per_dim, bool dequantize, const std::optional<int64_t>& levels,
                     const std::optional<std::pair<double, double>>& dequantize_range, int64_t set_orders,
                     const std::optional<int64_t>& support_draws, const std::optional<py::function>& progress) {
    sbgm::LikelihoodRequest request;
    request.config.method = sbgm::likelihood_method_from_string(bound);
    request.config.draws = draws;
    request.config.solver.rtol = rtol;
    request.config.solver.atol = atol;
    request.config.divergence = sbgm::divergence_from_string(divergence);
    request.config.probes = probes;
    request.config.chunk_size = chunk;  // 0: the model's default
    request.x = as_tensor(x);
    sbgm::check_data_rows(request.x.dim() == 1 ? request.x.reshape({1, -1}) : request.x, "x");
    request.cond = optional_tensor(cond);
    request.seed = seed;
    request.bits_per_dim = bits_per_dim;
    request.dequantize = dequantize;
    request.levels = levels;
    request.range = dequantize_range;
    request.set_orders = set_orders;
    request.support_draws = support_draws;
    sbgm::resolve_likelihood(model_, request).validate();
    const sbgm::LikelihoodReport report = released(progress, [&](const sbgm::ProgressFn& progress_of) {
      return sbgm::run_likelihood_request(model_, request, progress_of);
    });
    return py::make_tuple(to_numpy(report.value), to_numpy(report.std_error), report.stats.function_evals);
  }

  py::array inpaint(const Array& observed, const std::optional<Array>& mask, double noise_std, int64_t n,
                    const std::string& method, const std::string& sampler, int64_t steps,
                    const std::optional<double>& lambda, const std::string& schedule, double eta, int64_t order,
                    const OdeRange& ode_range, uint64_t seed, const std::optional<py::function>& progress) {
    sbgm::InpaintRequest request;
    request.observed = as_tensor(observed);
    request.mask = optional_tensor(mask);
    request.noise_std = noise_std;
    request.n = n;
    if (!method.empty()) request.method = sbgm::inverse_method_from_string(method);
    request.sampler = sampler;
    request.sampling = sampler_options(steps, lambda, schedule, eta, order, ode_range);
    request.steps_given = steps != 0;
    request.seed = seed;
    return to_numpy(released(progress, [&](const sbgm::ProgressFn& report) {
      return sbgm::run_inpaint_request(model_, request, report);
    }));
  }

  // The calibration report as a dict: simulations, samples, hpd_samples, sampler, steps, levels,
  // ranks [S, D] and checks {name: {ks_statistic, p_value, mean_coverage_gap, verdict, coverage}}.
  py::dict diagnose(const Array& theta, const Array& x, int64_t samples, int64_t hpd_samples, const std::string& sampler,
                    int64_t steps, const std::optional<double>& lambda, const std::string& schedule, double eta,
                    int64_t order, const OdeRange& ode_range, double rtol, double atol, int64_t set_orders, uint64_t seed,
                    const std::optional<py::function>& progress) {
    sbgm::DiagnoseRequest request;
    request.theta = as_tensor(theta);
    request.x = as_tensor(x);
    request.config.samples = samples;
    request.config.hpd_samples = hpd_samples;
    request.config.likelihood.solver.rtol = rtol;
    request.config.likelihood.solver.atol = atol;
    request.config.set_orders = set_orders;
    request.sampler = sampler;
    request.sampling = sampler_options(steps, lambda, schedule, eta, order, ode_range);
    request.steps_given = steps != 0;
    request.seed = seed;
    const sbgm::Diagnosis d = released(progress, [&](const sbgm::ProgressFn& report) {
      return sbgm::run_diagnose_request(model_, request, report);
    });
    py::dict checks;
    for (const auto& c : d.report.checks) {
      py::dict check;
      check["ks_statistic"] = c.test.statistic;
      check["p_value"] = c.test.p_value;
      check["mean_coverage_gap"] = c.mean_gap;
      check["verdict"] = sbgm::verdict(c);
      check["coverage"] = py::array_t<double>(static_cast<py::ssize_t>(c.coverage.size()), c.coverage.data());
      checks[py::str(c.name)] = check;
    }
    const std::vector<double> levels = sbgm::coverage_levels();
    py::dict out;
    out["simulations"] = d.report.simulations;
    out["samples"] = d.report.samples;
    out["hpd_samples"] = d.report.hpd_samples;
    out["sampler"] = sbgm::to_string(d.sampling.kind);
    out["steps"] = d.sampling.steps;
    out["levels"] = py::array_t<double>(static_cast<py::ssize_t>(levels.size()), levels.data());
    out["ranks"] = to_numpy(d.report.ranks.to(at::kDouble)).attr("astype")("int64");
    out["checks"] = checks;
    return out;
  }

  std::vector<int64_t> data_shape() const { return model_.data_shape; }
  int64_t cond_dim() const { return model_.cond_dim; }
  int64_t step() const { return model_.step; }
  bool analytic() const { return model_.analytic(); }
  int64_t parameter_count() const { return model_.analytic() ? 0 : model_.parameter_count(); }
  std::string config_toml() const { return model_.config.to_toml(); }

 private:
  sbgm::Model model_;
};

PyModel load(const std::string& path, bool ema) { return PyModel(sbgm::load_model(path, ema)); }

PyModel gaussian_mixture(const Array& weights, const Array& means, const Array& covs, const std::string& sde) {
  sbgm::SDEConfig config;
  config.kind = sbgm::sde_kind_from_string(sde);
  // The model keeps the mixture beyond this call: its own copies.
  const sbgm::GaussianMixture mixture(as_tensor(weights).clone(), as_tensor(means).clone(), as_tensor(covs).clone());
  return PyModel(sbgm::mixture_model(mixture, config));
}

// Trains into run_dir; returns (steps done, interrupted by Ctrl-C, checkpoint path). The report
// callable gets (step, total steps, loss, held-out loss or NaN) at every log interval, note the
// run's one-line messages (files written, the baseline chosen); script: the bytes of a
// TorchScript network (model.type = torchscript) given as a module rather than a file.
py::tuple train(const Array& data, const std::optional<Array>& cond, const std::string& run_dir,
                const std::map<std::string, std::string>& keys, bool resume,
                const std::optional<py::function>& report, const std::optional<py::function>& note,
                const std::optional<py::bytes>& script) {
  sbgm::RunConfig config;
  for (const auto& [key, value] : keys) config.set(key, value);
  if (script) config.model.script = std::make_shared<const std::string>(*script);  // a module from torch.jit.save
  sbgm::TrainingData rows;
  rows.data = as_tensor(data);
  rows.data_name = "data";
  rows.cond = optional_tensor(cond);
  rows.cond_name = "cond";
  std::atomic<bool> stop{false};
  std::optional<py::error_already_set> interrupt;
  sbgm::TrainRunCallbacks callbacks;
  callbacks.on_progress = [&](const sbgm::TrainProgress& p) {
    py::gil_scoped_acquire gil;
    if (stop) return;
    if (PyErr_CheckSignals() != 0) {  // Ctrl-C: the run saves its checkpoint at this step and returns
      interrupt.emplace();
      stop = true;
      return;
    }
    if (!report) return;
    try {
      (*report)(p.step, p.total_steps, p.loss, p.validation_loss);
    } catch (py::error_already_set& e) {
      // Ctrl-C while the report's Python code ran: stop the same way.
      if (!e.matches(PyExc_KeyboardInterrupt)) throw;
      interrupt.emplace(std::move(e));
      stop = true;
    }
  };
  callbacks.on_message = [&](const std::string& m) {
    py::gil_scoped_acquire gil;
    if (note) (*note)(m);
  };
  sbgm::TrainRunResult result;
  {
    py::gil_scoped_release release;
    FlushDenormals flush;
    result = sbgm::train_run(config, rows, run_dir, resume, callbacks, &stop);
  }
  if (interrupt) interrupt->restore();
  if (result.interrupted) {
    if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw py::error_already_set();
  }
  return py::make_tuple(result.step, result.interrupted, result.checkpoint);
}

std::vector<std::pair<std::string, std::string>> config_keys() {
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& k : sbgm::RunConfig::keys()) keys.emplace_back(k.name, k.help);
  return keys;
}

std::string default_config_value(const std::string& key) { return sbgm::RunConfig().get(key); }

}  // namespace

PYBIND11_MODULE(_sbgm, m) {
  m.doc() = "sbgm's C++ library (use the sbgm package, not this module)";
  // Local: the translator sees this module's exceptions only, not those of other modules built
  // with pybind11 (PyTorch's among them) that may share its registry.
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const sbgm::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.worded(keyword_for).c_str());
    } catch (const sbgm::IOError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const c10::Error& e) {
      const std::string line = library_error_line(e.what_without_backtrace());
      PyErr_SetString(line == "out of memory" ? PyExc_MemoryError : PyExc_RuntimeError, line.c_str());
    }
  });
  m.attr("torch_version") = TORCH_VERSION;
  // As the CLI does: large activations stay mapped between a sampler's steps instead of being
  // mapped and unmapped at every one (util/runtime.hpp; without it sampling took 4.9 times the
  // CLI's time, bench/python_overhead.py).
  sbgm::tune_allocator();
  py::class_<PyModel>(m, "Model")
      .def("sample", &PyModel::sample)
      .def("log_prob", &PyModel::log_prob)
      .def("inpaint", &PyModel::inpaint)
      .def("diagnose", &PyModel::diagnose)
      .def_property_readonly("data_shape", &PyModel::data_shape)
      .def_property_readonly("cond_dim", &PyModel::cond_dim)
      .def_property_readonly("step", &PyModel::step)
      .def_property_readonly("analytic", &PyModel::analytic)
      .def_property_readonly("parameter_count", &PyModel::parameter_count)
      .def_property_readonly("config_toml", &PyModel::config_toml);
  m.def("load", &load, py::arg("path"), py::arg("ema") = true);
  m.def("gaussian_mixture", &gaussian_mixture);
  m.def("train", &train);
  m.def("config_keys", &config_keys);
  m.def("default_config_value", &default_config_value);
  m.def("set_threads", [](int threads) {
    FlushDenormals keep;  // the workers flush; the interpreter's thread keeps its flags
    sbgm::configure_threads(threads);
  });
}

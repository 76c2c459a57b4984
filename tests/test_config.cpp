// The run config: TOML in, keys set one by one, TOML out, and every bad value rejected.
#include <gtest/gtest.h>

#include <limits>

#include "sbgm/run/run_config.hpp"
#include "sbgm/run/run_defaults.hpp"
#include "sbgm/util/error.hpp"

using namespace sbgm;

TEST(RunConfig, TomlRoundTrip) {
  RunConfig c;
  c.merge_toml("[model]\ntype = \"resnet\"\nwidth = 64\n[sde]\ntype = \"ve\"\nsigma_max = 3.5\n[train]\nlr = 2e-4\n",
               "test.toml");
  EXPECT_EQ(c.model.kind, NetKind::ResNet);
  EXPECT_EQ(c.model.width, 64);
  EXPECT_EQ(c.sde.kind, SDEKind::VE);
  EXPECT_DOUBLE_EQ(c.sde.sigma_max, 3.5);
  EXPECT_DOUBLE_EQ(c.train.lr, 2e-4);
  RunConfig d;
  d.merge_toml(c.to_toml(), "written");
  EXPECT_EQ(d.to_toml(), c.to_toml());
  for (const auto& key : RunConfig::keys()) EXPECT_EQ(c.get(key.name), d.get(key.name)) << key.name;
}

// Paths are written as TOML strings, escaped: backslashes, quotes, newlines and non-ASCII come
// back as they were (a run whose data path held `\` or `"` could not be loaded before).
TEST(RunConfig, StringsWithEscapesRoundTrip) {
  RunConfig c;
  c.data.file = "C:\\data\\new \"set\"\nline two\t\u00e9t\u00e9 \u03b8.npy";
  c.data.cond = "\\\\server\\share\\x.npy";
  RunConfig d;
  d.merge_toml(c.to_toml(), "written");
  EXPECT_EQ(d.data.file, c.data.file);
  EXPECT_EQ(d.data.cond, c.data.cond);
  EXPECT_EQ(d.to_toml(), c.to_toml());
}

TEST(RunConfig, RejectsUnknownKeysAndBadValues) {
  RunConfig c;
  EXPECT_THROW(c.merge_toml("[model]\nwidht = 3\n", "f.toml"), InvalidArgument);
  EXPECT_THROW(c.merge_toml("width = 3\n", "f.toml"), InvalidArgument);
  EXPECT_THROW(c.merge_toml("[model\n", "f.toml"), InvalidArgument);
  EXPECT_THROW(c.set("train.steps", "many"), InvalidArgument);
  EXPECT_THROW(c.set("train.steps", "1.5"), InvalidArgument);
  EXPECT_THROW(c.set("train.lr", "nan"), InvalidArgument);
  EXPECT_THROW(c.set("sde.type", "vpp"), InvalidArgument);
  EXPECT_THROW(c.set("no.such", "1"), InvalidArgument);
  c.set("train.steps", "1e4");
  EXPECT_EQ(c.train.steps, 10000);
}

TEST(RunConfig, ValidateRejectsImpossibleValues) {
  auto invalid = [](const std::string& key, const std::string& value) {
    RunConfig c;
    c.data.dataset = "ring8";
    c.set(key, value);
    EXPECT_THROW(c.validate(), InvalidArgument) << key << " = " << value;
  };
  invalid("train.steps", "0");
  invalid("train.batch_size", "-1");
  // Found by fuzz/fuzz_config.cpp: a batch of 0 rows (or reports every 0 steps) divided by zero
  // while the auto keys were settled, before their own check.
  invalid("train.batch_size", "0");
  invalid("train.log_every", "0");
  invalid("train.lr", "0");
  invalid("sde.beta_min", "30");
  invalid("sde.t_eps", "2");
  invalid("model.width", "0");
  invalid("sample.sampler", "bogus");
  invalid("sample.steps", "0");
  invalid("sample.lambda", "1.5");
  RunConfig pc;  // lambda is em's, ddim's and dpmpp2m's: pc follows the reverse SDE only
  pc.data.dataset = "ring8";
  pc.set("sample.sampler", "pc");
  pc.set("sample.lambda", "0");
  EXPECT_NO_THROW(pc.validate());
  pc.set("sample.lambda", "0.5");
  EXPECT_THROW(pc.validate(), InvalidArgument);
  invalid("train.ema_decay", "1");
  invalid("data.cond_set", "-2");  // -1 is how auto is held: refused by the parser
  invalid("data.file", "x.npy");  // both a dataset and a file
  invalid("model.candidates", "none,mlp");  // names that are no candidate, twice, none at all
  invalid("model.candidates", "gaussian,gaussian");
  invalid("model.candidates", "");
  // The Gaussian baseline is for vector networks and has no unconditional mode.
  RunConfig image;
  image.data.dataset = "ring8";
  image.set("model.type", "unet");
  image.set("model.baseline", "gaussian");
  EXPECT_THROW(image.validate(), InvalidArgument);
  RunConfig guided;
  guided.data.file = "theta.npy";
  guided.data.cond = "x.npy";
  guided.set("train.cond_dropout", "0.1");
  guided.set("model.baseline", "gaussian");
  EXPECT_THROW(guided.validate(), InvalidArgument);
  EXPECT_THROW(guided.set("model.baseline", "linear"), InvalidArgument);
}

// Keys left "auto" read and write as "auto" and are settled by the run from its data.
TEST(RunConfig, AutoKeysRoundTripAndAreSettledFromTheData) {
  RunConfig c;
  for (const auto& key : auto_keys()) EXPECT_EQ(c.get(key), "auto") << key;
  RunConfig d;
  d.merge_toml(c.to_toml(), "written");
  for (const auto& key : auto_keys()) EXPECT_EQ(d.get(key), "auto") << key;
  EXPECT_THROW(c.set("train.steps", "-1"), InvalidArgument);  // the sentinel is not a value
  c.set("train.steps", "500");
  c.set("train.steps", "auto");
  EXPECT_EQ(c.get("train.steps"), "auto");

  // Unconditional: a fixed length with cosine decay, nothing held out.
  const RunConfig u = settle_auto_keys(RunConfig{}, DataFacts{10000, 0});
  EXPECT_EQ(u.train.steps, 20000);
  EXPECT_EQ(u.train.schedule, LRSchedule::Cosine);
  EXPECT_EQ(u.train.validation_fraction, 0.0);
  EXPECT_EQ(u.train.patience, 0);
  EXPECT_EQ(u.train.validate_every, 0);
  for (const auto& key : auto_keys()) EXPECT_NE(u.get(key), "auto") << key;

  // Conditional: 30,000 steps (or 300 epochs, up to 200,000 steps) with a cosine decay, a tenth
  // held out and validated a hundred times but at most once an epoch, patience a quarter of the
  // run and at least 30 epochs.
  RunConfig cond;
  cond.train.batch_size = 256;
  const RunConfig s = settle_auto_keys(cond, DataFacts{10000, 3});
  EXPECT_DOUBLE_EQ(s.train.validation_fraction, 0.1);
  EXPECT_EQ(s.train.steps, 30000);
  EXPECT_EQ(s.train.schedule, LRSchedule::Cosine);
  EXPECT_EQ(s.train.validate_every, 300);
  EXPECT_EQ(s.train.patience, 25);
  EXPECT_NO_THROW(s.train.validate());
  // At 10^5 pairs 300 epochs of 352 steps are longer than 30,000 steps.
  const RunConfig mid = settle_auto_keys(cond, DataFacts{100000, 3});
  EXPECT_EQ(mid.train.steps, 300 * 352);
  EXPECT_EQ(mid.train.validate_every, 300 * 352 / 100);
  EXPECT_EQ(mid.train.patience, 25);
  // At 10^6 pairs the run is 200,000 steps, and an epoch (3516 steps) is longer than a
  // hundredth of it.
  const RunConfig big = settle_auto_keys(cond, DataFacts{1000000, 3});
  EXPECT_EQ(big.train.steps, 200000);
  EXPECT_EQ(big.train.validate_every, (900000 + 255) / 256);
  EXPECT_EQ(big.train.patience, 30);  // 30 epochs outlast a quarter of the run
  EXPECT_EQ(s.sample.sampler, "dpmpp2m");  // a posterior: the reverse SDE by dpmpp2m, 50 steps
  EXPECT_EQ(s.sample.steps, 50);
  EXPECT_EQ(s.sample.lambda, 0.0);
  RunConfig edm = cond;
  edm.sample.sampler = "edm";  // asked for without its steps: 50 noise levels
  EXPECT_EQ(settle_auto_keys(edm, DataFacts{10000, 3}).sample.steps, 50);
  RunConfig em = cond;  // a posterior's em without its steps: 200
  em.sample.sampler = "em";
  EXPECT_EQ(settle_auto_keys(em, DataFacts{10000, 3}).sample.steps, 200);
  RunConfig ode_solver = cond;  // a sampler named without its lambda follows its own
  ode_solver.sample.sampler = "dpmpp2m";
  EXPECT_EQ(settle_auto_keys(ode_solver, DataFacts{10000, 3}).sample.lambda, 1.0);
  EXPECT_EQ(u.sample.sampler, "em");
  EXPECT_EQ(u.sample.steps, 1000);
  EXPECT_EQ(u.sample.lambda, 0.0);
  // A posterior is modelled with the VE SDE, anything else with VP; the Gaussian baseline is an
  // option (none unless asked for).
  EXPECT_EQ(s.sde.kind, SDEKind::VE);
  EXPECT_EQ(u.sde.kind, SDEKind::VP);
  EXPECT_EQ(s.model.baseline, Baseline::None);
  EXPECT_EQ(s.model.input_scaling, InputScaling::Unit);  // x_t at unit variance on a posterior's VE path
  EXPECT_EQ(u.model.input_scaling, InputScaling::None);
  EXPECT_EQ(s.get("sde.type"), "ve");
  RunConfig chosen = cond;
  chosen.set("sde.type", "vp");
  chosen.set("model.baseline", "gaussian");
  EXPECT_EQ(settle_auto_keys(chosen, DataFacts{10000, 3}).sde.kind, SDEKind::VP);
  EXPECT_EQ(settle_auto_keys(chosen, DataFacts{10000, 3}).model.baseline, Baseline::Gaussian);
  chosen.set("sde.type", "auto");
  EXPECT_EQ(chosen.get("sde.type"), "auto");
  // The networks a posterior with held-out pairs chooses among: the transformer as well on a GPU;
  // a run that chooses nothing records its one network.
  EXPECT_EQ(s.candidates, "none,gaussian");
  RunConfig on_gpu = cond;
  on_gpu.device = "cuda:1";
  EXPECT_EQ(settle_auto_keys(on_gpu, DataFacts{10000, 3}).candidates, "none,gaussian,transformer");
  EXPECT_EQ(u.candidates, "none");
  EXPECT_EQ(settle_auto_keys(chosen, DataFacts{10000, 3}).candidates, "gaussian");
  EXPECT_TRUE(chooses_among_candidates(cond, DataFacts{10000, 3}));
  EXPECT_FALSE(chooses_among_candidates(cond, DataFacts{30, 3}));  // nothing held out
  EXPECT_FALSE(chooses_among_candidates(chosen, DataFacts{10000, 3}));

  // What the user set is kept; without held-out rows a conditional run has a fixed length again.
  cond.train.validation_fraction = 0;
  cond.train.steps = 777;
  const RunConfig f = settle_auto_keys(cond, DataFacts{10000, 3});
  EXPECT_EQ(f.train.steps, 777);
  EXPECT_EQ(f.train.patience, 0);
  EXPECT_EQ(f.train.schedule, LRSchedule::Cosine);
  // Too few rows to hold a tenth out.
  EXPECT_EQ(settle_auto_keys(RunConfig{}, DataFacts{30, 2}).train.validation_fraction, 0.0);
}

// data.bounds = find: the box the training rows show is settled into data.lower / data.upper;
// bounds the user gives are left as they are. By default (auto) a posterior looks for its box and
// keeps within it by rejection; other runs look for none; bounds the user gives are mapped.
TEST(RunConfig, FoundBoundsAreSettledIntoTheLists) {
  const double inf = std::numeric_limits<double>::infinity();
  DataFacts facts{10000, 3};
  facts.found = Bounds::from_lists({-1, -inf}, {1, inf}, 2);
  EXPECT_EQ(RunConfig{}.get("data.bounds"), "auto");
  EXPECT_EQ(RunConfig{}.get("data.keep_within"), "auto");
  const RunConfig posterior = settle_auto_keys(RunConfig{}, facts);
  EXPECT_EQ(posterior.get("data.bounds"), "find");
  EXPECT_EQ(posterior.get("data.keep_within"), "reject");
  EXPECT_EQ(posterior.data.lower, (std::vector<double>{-1, -inf}));
  EXPECT_TRUE(looks_for_bounds(RunConfig{}, 3));
  EXPECT_FALSE(looks_for_bounds(RunConfig{}, 0));
  DataFacts unconditional = facts;
  unconditional.cond_dim = 0;
  const RunConfig plain = settle_auto_keys(RunConfig{}, unconditional);
  EXPECT_EQ(plain.get("data.bounds"), "none");
  EXPECT_EQ(plain.get("data.keep_within"), "map");
  EXPECT_TRUE(plain.data.lower.empty());

  RunConfig find;
  find.set("data.bounds", "find");
  const RunConfig s = settle_auto_keys(find, facts);
  EXPECT_EQ(s.data.lower, (std::vector<double>{-1, -inf}));
  EXPECT_EQ(s.data.upper, (std::vector<double>{1, inf}));
  RunConfig read;  // written to config.toml as they are
  read.merge_toml(s.to_toml(), "config.toml");
  EXPECT_EQ(read.data.lower, s.data.lower);
  EXPECT_EQ(read.get("data.bounds"), "find");
  EXPECT_EQ(read.get("data.keep_within"), "reject");
  // Nothing found: no bounds. The user's bounds win, and none is looked for.
  EXPECT_TRUE(settle_auto_keys(find, DataFacts{10000, 3}).data.lower.empty());
  RunConfig given = find;
  given.set("data.lower", "-2");
  EXPECT_FALSE(looks_for_bounds(given, 3));
  const RunConfig g = settle_auto_keys(given, facts);
  EXPECT_EQ(g.data.lower, (std::vector<double>{-2}));
  EXPECT_TRUE(g.data.upper.empty());
  EXPECT_EQ(g.get("data.keep_within"), "map");
  // Unconditional vectors when asked; pixels are refused.
  EXPECT_TRUE(looks_for_bounds(find, 0));
  EXPECT_EQ(settle_auto_keys(find, unconditional).data.lower, (std::vector<double>{-1, -inf}));
  RunConfig mapped = find;
  mapped.set("data.keep_within", "map");
  EXPECT_EQ(settle_auto_keys(mapped, facts).get("data.keep_within"), "map");
  find.set("data.dataset", "moons");
  find.set("model.type", "unet");
  try {
    find.validate();
    ADD_FAILURE() << "data.bounds = find on an image network was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("data.bounds = find"), std::string::npos) << e.what();
  }
  EXPECT_THROW(find.set("data.keep_within", "clip"), InvalidArgument);
}

// The sampler a command uses when it names none, or names one: the run's lambda goes with the
// run's own sampler only, and a sampler named by the command takes its own steps (a posterior's).
TEST(RunConfig, SamplingForCarriesTheRunsLambdaWithItsSampler) {
  RunConfig cond;
  cond.data.cond = "x.npy";
  const SamplerOptions own = sampling_for(cond, 3);
  EXPECT_EQ(own.kind, SamplerKind::DPMSolverPP2M);
  EXPECT_EQ(own.steps, 50);
  ASSERT_TRUE(own.lambda.has_value());
  EXPECT_EQ(*own.lambda, 0.0);
  const SamplerOptions em = sampling_for(cond, 3, SamplerKind::EulerMaruyama);
  EXPECT_EQ(em.steps, 200);
  EXPECT_FALSE(em.lambda.has_value());
  const SamplerOptions unipc = sampling_for(cond, 3, SamplerKind::UniPC);
  EXPECT_EQ(unipc.steps, 50);  // the run's steps: the same kind of steps
  EXPECT_FALSE(unipc.lambda.has_value());
  // A run written before sample.lambda existed (em, 200 steps) samples as it did.
  RunConfig old = cond;
  old.set("sample.sampler", "em");
  old.set("sample.steps", "200");
  const SamplerOptions before = sampling_for(old, 3);
  EXPECT_EQ(before.kind, SamplerKind::EulerMaruyama);
  EXPECT_EQ(before.steps, 200);
  EXPECT_FALSE(before.lambda.has_value());
  // Unconditional: em at 1000 steps on the reverse SDE; a multistep solver named takes 20 steps.
  const SamplerOptions u = sampling_for(RunConfig{}, 0);
  EXPECT_EQ(u.kind, SamplerKind::EulerMaruyama);
  EXPECT_EQ(u.steps, 1000);
  EXPECT_FALSE(u.lambda.has_value());
  EXPECT_EQ(sampling_for(RunConfig{}, 0, SamplerKind::DPMSolverPP2M).steps, 20);
}

// Found by fuzz/fuzz_config.cpp: a non-ASCII character where toml++ looks for whitespace (error
// paths included) reached undefined behaviour inside Debian's toml++ 3.3. toml++ now reads an
// ASCII rewrite: in strings such characters become escapes, in comments spaces, elsewhere they
// are refused with the line.
TEST(RunConfig, TomlReachesTheParserAsAscii) {
  const auto error_of = [](const std::string& text) {
    try {
      RunConfig().merge_toml(text, "fuzzed.toml");
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("[model]\nattention_res = [1\xca\xa2\nheads = 4\n").find("fuzzed.toml:2: a non-ASCII character outside"),
            std::string::npos);
  // The second finding: an unterminated literal string running into such a character.
  const char second[] = "[train]\nbatch_size = 24...'..7t-$at\0\0\0atch_1.b\xca\x9c" "h_size";
  EXPECT_NE(error_of(std::string(second, sizeof second - 1)).find("fuzzed.toml:2: an unterminated string"), std::string::npos);
  EXPECT_NE(error_of("[data]\nfile = \"a\xff\"\n").find("malformed UTF-8"), std::string::npos);
  EXPECT_NE(error_of("[data]\nfile = \"a\xc0\xaf\"\n").find("malformed UTF-8"), std::string::npos);  // overlong
  EXPECT_NE(error_of("[data]\nfile = \"a\\\xc3\xa9\"\n").find("an invalid escape"), std::string::npos);
  EXPECT_NE(error_of("[data]\nfile = \"abc\n").find("fuzzed.toml:2: an unterminated string"), std::string::npos);

  RunConfig c;
  c.merge_toml("# caf\xc3\xa9 \xca\xa2\n[data]\nfile = \"d\xc3\xa9j\xc3\xa0 \\\" \xca\xa2 \xf0\x9f\x8c\x8a.npy\"  # \xca\xa2\n"
               "dataset = '\xca\xa2 \\ \"'\n"
               "cond = \"\"\"\nline \xc3\xa9\"\"\"\"\n",
               "unicode.toml");
  EXPECT_EQ(c.data.file, "d\xc3\xa9j\xc3\xa0 \" \xca\xa2 \xf0\x9f\x8c\x8a.npy");
  EXPECT_EQ(c.data.dataset, "\xca\xa2 \\ \"");
  EXPECT_EQ(c.data.cond, "line \xc3\xa9\"");
}

// model.objective is a view of model.output: setting it chooses the velocity (flow) or a score
// output; a flow run's written config reads back as flow, and a file stating both keys in
// disagreement is refused instead of one silently winning.
TEST(RunConfig, ObjectiveIsAViewOfTheOutput) {
  RunConfig c;
  EXPECT_EQ(c.get("model.objective"), "score");
  c.set("model.objective", "flow");
  EXPECT_EQ(c.model.output, Parameterization::Velocity);
  const RunConfig settled = settle_auto_keys(c, DataFacts{1000, 0});
  EXPECT_EQ(settled.sde.kind, SDEKind::Linear);
  EXPECT_EQ(settled.sample.sampler, "ode");
  RunConfig d;
  d.merge_toml(c.to_toml(), "written");
  EXPECT_EQ(d.model.output, Parameterization::Velocity);
  c.set("model.objective", "score");
  EXPECT_EQ(c.model.output, Parameterization::Noise);
  EXPECT_THROW(c.set("model.objective", "flows"), InvalidArgument);
  RunConfig e;
  EXPECT_THROW(e.merge_toml("[model]\nobjective = \"score\"\noutput = \"velocity\"\n", "both.toml"), InvalidArgument);
  EXPECT_NO_THROW(e.merge_toml("[model]\nobjective = \"flow\"\noutput = \"velocity\"\n", "both.toml"));
}

// model.candidates: read in the order they are trained; the transformer is the small one.
TEST(RunConfig, CandidatesAreReadInTrainingOrder) {
  RunConfig c;
  c.set("model.candidates", "transformer, none");
  EXPECT_EQ(candidates_of(c), (std::vector<std::string>{"none", "transformer"}));
  c.merge_toml("[model]\ncandidates = [\"gaussian\", \"none\"]\n", "list.toml");
  EXPECT_EQ(candidates_of(c), (std::vector<std::string>{"none", "gaussian"}));
  c.model.width = 512;
  const RunConfig t = candidate_config(c, "transformer", DataFacts{10000, 3});
  EXPECT_EQ(t.model.kind, NetKind::Transformer);
  EXPECT_EQ(t.train.steps, 10000);  // a third of the run's 30,000
  c.train.steps = 900;
  EXPECT_EQ(candidate_config(c, "transformer", DataFacts{10000, 3}).train.steps, 300);
  EXPECT_EQ(t.model.width, 32);
  EXPECT_EQ(t.model.depth, 2);
  EXPECT_EQ(t.model.baseline, Baseline::None);
  const RunConfig g = candidate_config(c, "gaussian", DataFacts{10000, 3});
  EXPECT_EQ(g.model.baseline, Baseline::Gaussian);
  EXPECT_EQ(g.model.width, 512);
  EXPECT_EQ(g.train.steps, 900);
}

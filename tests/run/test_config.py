import pytest

from graphrec.errors import ConfigError
from graphrec.run import ExperimentConfig, dump_config, load_config


def write(tmp_path, text):
    p = tmp_path / "x.yaml"
    p.write_text(text)
    return p


def test_defaults_and_roundtrip(tmp_path):
    c = load_config(write(tmp_path, "name: t\nmodel:\n  name: mf-bpr\n  dim: 16\ntrain:\n  lr: 1e-2\n"))
    assert c.model.name == "mf-bpr" and c.model.dim == 16 and c.train.lr == 0.01
    assert c.split.ratios == (0.8, 0.1, 0.1)
    again = load_config(write(tmp_path, dump_config(c)))
    assert again == c


@pytest.mark.parametrize(("text", "message"), [
    ("model:\n  nam: lightgcn\n", r"model: lightgcn has no key\(s\) \['nam'\]"),
    ("trian:\n  epochs: 3\n", r"top level: unknown key\(s\) \['trian'\]"),
    ("train:\n  epochs: five\n", "train.epochs: expected an integer, found 'five'"),
    ("train:\n  epochs: 2.5\n", "train.epochs: expected an integer"),
    ("model:\n  name: gcn\n", r"model.name: unknown model 'gcn'; known models: mostpop"),
    ("split:\n  ratios: [0.8, 0.2]\n", "split.ratios: expected 3 values, found 2"),
    ("dataset:\n  name: ml-2k\n", r"dataset.name: 'ml-2k' is no known dataset \(known: "),
    ("graph:\n  user_features: all\n", "graph.user_features: expected one of"),
    ("train:\n  progress: yes please\n", "train.progress: expected true or false"),
    ("- a\n- b\n", "expected a mapping of sections"),
    ("model: [\n", "not valid YAML"),
    ("model:\n  name: graphsage\n  attribute_nodes: true\n", r"model: graphsage has no key\(s\) \['attribute_nodes'\]"),
    ("model:\n  attribute_nodes: true\ngraph:\n  item_attributes: []\n", "model.attribute_nodes needs graph.item_attributes"),
    # options a model does not read are errors, not silently ignored
    ("model:\n  name: lightgcn\n  k: 50\n", r"model: lightgcn has no key\(s\) \['k'\]; its keys: \['dim', 'num_layers'"),
    ("model:\n  name: mostpop\n  dim: 8\n", r"model: mostpop has no key\(s\) \['dim'\]; its keys: none"),
    ("model:\n  name: lightgcn\ngraph:\n  user_features: text_mean\n", r"graph: \['user_features'\] are read by models built from the heterogeneous graph \(graphsage\)"),
    ("model:\n  name: mf-bpr\ntext:\n  batch_size: 8\n", "text: mf-bpr as configured uses no item text; the text section is read by lightgcn with item_features: text"),
    ("model:\n  name: itemknn\ntrain:\n  epochs: 5\n", r"train: itemknn is fitted in closed form \(no epochs, no loss\); train\.epochs does not apply"),
    # values out of range or inconsistent, before any work
    ("model:\n  name: text-lightgcn\n", r"model.name 'text-lightgcn' is now written as \{name: lightgcn, item_features: text\}"),
    ("model:\n  name: lightgcn\n  item_features: image\n", r"model.item_features: expected one of \['none', 'text'\]"),
    ("model:\n  num_layers: -1\n", "model.num_layers must be >= 0, got -1"),
    ("model:\n  dim: 0\n", "model.dim must be >= 1, got 0"),
    ("model:\n  name: graphsage\n  num_layers: 2\n  fanouts: [10]\n", r"model.fanouts needs one entry per layer .* found \[10\]"),
    ("eval:\n  ks: [10]\n", r"train.metric 'ndcg@20' is at k=20, but eval.ks is \[10\]"),
    ("train:\n  metric: ndgc@20\n", "train.metric: expected <metric>@<k> with a metric among"),
    ("train:\n  device: gpu\n", "train.device: 'gpu' is not a device"),
    ("split:\n  ratios: [0.8, 0.3, 0.1]\n", r"split.ratios: .*summing to 1; found \[0.8, 0.3, 0.1\] \(sum 1.2\)"),
    ("split:\n  method: fixed\n", "split.method 'fixed' needs split.fixed"),
    # a key the split's method does not read would not act
    ("split:\n  method: temporal\n  seed: 7\n", r"split.seed is not read by split.method 'temporal', which reads "
                                                  r"ratios: leave it out"),
    ("split:\n  method: leave-one-out\n  ratios: [0.5, 0.3, 0.2]\n",
     "split.ratios is not read by split.method 'leave-one-out', which reads no other key"),
    ("split:\n  method: random\n  cold_fraction: 0.2\n", "split.cold_fraction is not read by split.method 'random'"),
    ("split:\n  method: random\n  fixed: u1\n", "split.fixed is only read by split.method 'fixed'"),
    ("train:\n  threads: 0\n", "threads must be 'auto' or an integer >= 1, got 0"),
])
def test_errors_name_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(write(tmp_path, text))
    assert str(tmp_path / "x.yaml") in str(exc.value)


def test_overrides():
    c = load_config("experiments/ml100k-lightgcn.yaml", {"train.epochs": 3, "model.dim": 8})
    assert c.train.epochs == 3 and c.model.dim == 8
    with pytest.raises(ConfigError, match=r"train\.epochs: expected an integer"):
        load_config("experiments/ml100k-lightgcn.yaml", {"train.epochs": "x"})
    # a key misspelt on the command line: the error names the override beside the file
    with pytest.raises(ConfigError, match=r"^experiments/ml100k-lightgcn\.yaml with --set train\.epoch=3: train: "
                                          r"unknown key"):
        load_config("experiments/ml100k-lightgcn.yaml", {"train.epoch": 3})


def test_shipped_configs_are_valid():
    import glob

    paths = sorted(glob.glob("experiments/*.yaml"))
    assert len(paths) >= 10
    for p in paths:
        assert isinstance(load_config(p), ExperimentConfig)


def test_every_model_has_an_experiment_per_dataset():
    from graphrec.nn.registry import MODELS

    for name in MODELS:
        for prefix in ("ml100k", "mlsmall"):
            assert load_config(f"experiments/{prefix}-{name}.yaml").model.name == name
    for dataset in ("gowalla", "yelp2018", "amazon-book"):  # the LightGCN-format benchmarks
        for name in ("lightgcn", "xsimgcl", "simgcl", "gf-cf", "bspm", "mf-bpr", "itemknn", "mostpop"):
            config = load_config(f"experiments/{dataset}-{name}.yaml")
            assert (config.model.name, config.dataset.name, config.split.method) == (name, dataset, "fixed")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_cpu_only_torch_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"train.device: 'cuda' asked for, but this torch .* sees no CUDA device"):
        load_config(write(tmp_path, "train:\n  device: cuda\n"))


def test_saved_config_holds_only_what_the_model_reads(tmp_path):
    for path in ("experiments/ml100k-itemknn.yaml", "experiments/ml100k-graphsage-attrs.yaml"):
        c = load_config(path)
        again = load_config(write(tmp_path, dump_config(c)))  # a run's config.yaml loads as it was written
        assert again == c
    text = dump_config(load_config("experiments/ml100k-itemknn.yaml"))
    assert "dim:" not in text and "epochs:" not in text and "text:" not in text


def test_old_run_directory_config_is_translated(tmp_path):
    # graphrec 0.1 wrote every model's defaults and called text-aware LightGCN "text-lightgcn"
    old = ("name: old\nmodel:\n  name: text-lightgcn\n  dim: 32\n  num_layers: 2\n  reg: 0.0001\n  k: 100\n"
           "  fanouts: null\n  attribute_nodes: false\ngraph:\n  user_features: none\ntext:\n  batch_size: 16\n")
    c = load_config(write(tmp_path, old), strict=False)
    assert (c.model.name, c.model.item_features, c.model.dim, c.text.batch_size) == ("lightgcn", "text", 32, 16)
    assert load_config(write(tmp_path, dump_config(c))) == c


def test_a_run_directory_written_before_split_shuffle_keeps_the_global_shuffle(tmp_path):
    """A run's config.yaml without split.shuffle was split with the global shuffle: read from a run directory
    (strict=False: resume, retrain, bundles) it stays so; an experiment file without it gets the default."""
    old = write(tmp_path, "name: t\nsplit:\n  method: random\n  seed: 7\nmodel:\n  name: mf-bpr\n")
    assert load_config(old, strict=False).split.shuffle == "global"
    assert load_config(old).split.shuffle == "grouped"
    assert load_config(write(tmp_path, "name: t\nmodel:\n  name: mf-bpr\n"), strict=False).split.shuffle == "global"
    fixed = write(tmp_path, "name: t\nsplit:\n  method: fixed\n  fixed: u1\nmodel:\n  name: mf-bpr\n")
    assert load_config(fixed, strict=False) == load_config(fixed)  # no shuffle to keep: resumes as written
    new = load_config(write(tmp_path, "name: t\nmodel:\n  name: mf-bpr\n"))
    assert load_config(write(tmp_path, dump_config(new)), strict=False).split.shuffle == "grouped"  # written since


def test_a_run_directory_may_record_split_keys_that_never_acted(tmp_path):
    """compare.py set split.seed on fixed splits before such keys were refused: the run still loads."""
    old = write(tmp_path, "name: t\nsplit:\n  method: fixed\n  fixed: u1\n  seed: 2021\nmodel:\n  name: mostpop\n")
    assert load_config(old, strict=False).split.seed == 2020  # its default: it never acted
    with pytest.raises(ConfigError, match=r"split\.seed is not read by split\.method 'fixed'"):
        load_config(old)

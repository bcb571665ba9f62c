import math

import torch

from graphrec.explain import graphsage_edge_attributions
from graphrec.nn import GraphSAGE
from tests.nn.test_sage import graph


def model() -> GraphSAGE:
    torch.manual_seed(0)
    return GraphSAGE(graph(), dim=8, num_layers=2, fanouts=[-1, -1]).eval()


def test_completeness_and_score():
    m = model()
    users, items = m.get_embedding()
    att = graphsage_edge_attributions(m, 4, 9, steps=256)
    assert math.isclose(att.score, float((users[4] @ items[9]).detach()), rel_tol=1e-5, abs_tol=1e-6)
    # Σ IG = f(1) - f(0), up to the midpoint rule's error, which shrinks with the steps (slowly: ReLU kinks)
    coarse = graphsage_edge_attributions(m, 4, 9, steps=1)
    assert abs(att.completeness_error) < 1e-3 * abs(att.score - att.baseline)
    assert abs(att.completeness_error) <= abs(coarse.completeness_error)


def test_silencing_every_message_gives_the_baseline():
    # f(0) is the score of a graph whose nodes keep their inputs but receive nothing: same as a graph with no edges
    m = model()
    att = graphsage_edge_attributions(m, 4, 9)
    empty = m.graph.clone()
    for et in empty.edge_types:
        empty[et].edge_index = empty[et].edge_index[:, :0]
    h = m.encoder(*m._inputs(empty))
    assert math.isclose(att.baseline, float((h["user"][4] @ h["item"][9]).detach()), rel_tol=1e-5, abs_tol=1e-6)


def test_masks_are_cleared_afterwards():
    m = model()
    before = m.get_embedding()[0].detach().clone()
    graphsage_edge_attributions(m, 0, 0, steps=2)
    torch.testing.assert_close(m.get_embedding()[0].detach(), before)
    assert all(getattr(mod, "explain", None) in (None, False) for mod in m.modules())


def test_attributions_survive_a_pyg_explainer_run_before():
    """PyG's GNNExplainer registers its mask as a parameter of each layer and clear_masks leaves the slot, after
    which set_masks wraps every mask in a new Parameter: the gradients would never reach the caller's masks."""
    from torch_geometric.explain.algorithm.utils import clear_masks, set_hetero_masks

    torch.manual_seed(0)
    model = GraphSAGE(graph(), dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    before = graphsage_edge_attributions(model, 2, 5, steps=32)
    g = model.graph
    params = {et: torch.nn.Parameter(torch.ones(g[et].edge_index.shape[1])) for et in g.edge_types}
    set_hetero_masks(model.encoder, params, g.edge_index_dict)  # what GNNExplainer does
    clear_masks(model.encoder)
    after = graphsage_edge_attributions(model, 2, 5, steps=32)
    for et, v in before.values.items():
        torch.testing.assert_close(after.values[et], v)
    assert abs(after.completeness_error) < 1e-3 * abs(after.score - after.baseline)

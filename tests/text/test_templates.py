import pytest

from graphrec.text import display_title


@pytest.mark.parametrize(("sorted_title", "shown"), [
    ("Shining, The (1980)", "The Shining (1980)"),
    ("Good, the Bad and the Ugly, The (1966)", "The Good, the Bad and the Ugly (1966)"),
    ("City of Lost Children, The (Cité des enfants perdus, La) (1995)",
     "The City of Lost Children (Cité des enfants perdus, La) (1995)"),
    ("Homme et une femme, Un (1966)", "Un Homme et une femme (1966)"),
    ("Avventura, L' (1960)", "L'Avventura (1960)"),
    ("Toy Story (1995)", "Toy Story (1995)"),
    ("Sex, Lies, and Videotape (1989)", "Sex, Lies, and Videotape (1989)"),  # "and" is not an article
    ("Beatles, The", "The Beatles"),
])
def test_display_title(sorted_title, shown):
    assert display_title(sorted_title) == shown


def test_item_labels_tell_apart_items_that_share_a_title():
    from graphrec.text import item_labels

    labels = item_labels(["Money Talks (1997)", "Shining, The (1980)", "Money Talks (1997)"], [1053, 7, 1241])
    assert labels == ["Money Talks (1997) [item 1053]", "The Shining (1980)", "Money Talks (1997) [item 1241]"]
    assert item_labels(labels, [1053, 7, 1241]) == labels  # unique labels come back unchanged (older bundles)

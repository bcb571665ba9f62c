import numpy as np

from graphrec.data import Dataset, Interactions, Vocabulary


def make_dataset(users, items, ratings=None, timestamps=None, num_users=None, num_items=None, name="tiny") -> Dataset:
    users = np.asarray(users)
    items = np.asarray(items)
    nu = num_users if num_users is not None else int(users.max()) + 1
    ni = num_items if num_items is not None else int(items.max()) + 1
    r = np.ones(len(users)) if ratings is None else np.asarray(ratings)
    ts = np.arange(len(users)) if timestamps is None else np.asarray(timestamps)
    return Dataset(name, Interactions(users, items, r, ts), Vocabulary(np.arange(nu) + 100, "user"),
                   Vocabulary(np.arange(ni) + 1000, "item"))

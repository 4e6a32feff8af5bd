from .build import IndexResult, build_index, compare, compare_many
from .framework import Framework, Node, framework_from_meta, framework_from_tree
from .spec import Aggregate, Denominate, Impute, IndexSpec, Normalise, Screen, Treat, Weight

"""detectron2's ``PicklableWrapper`` (cloudpickle for lambdas across processes): not provided."""
from .absent import absent_names

__getattr__ = absent_names(__name__, {
    "PicklableWrapper": "not provided: seg_research passes datasets to workers by registration (engine.launch "
                        "re-registers them) and mappers must be picklable; use functools.partial or a module-level "
                        "function instead of a lambda, or install cloudpickle and use cloudpickle.dumps/loads.",
})

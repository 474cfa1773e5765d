"""Shipped research projects, importable from the installed wheel.

``seg_research.projects`` holds detectron2-style projects that are part of the package, as
``detectron2.projects.deeplab`` is part of detectron2: ``seg_research.projects.mask2former`` and
``seg_research.projects.deeplab``. Each registers its modules in the library's registries when it is
imported and adds its config keys with an ``add_<name>_config(cfg)`` function. This is the top layer:
a project may import any part of the library; nothing in the library imports a project.
"""

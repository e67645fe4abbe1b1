# libphx_topo: hwloc model, bundles, cpusets, binding.
$(eval $(call phx_lib,phx_topo,topology))

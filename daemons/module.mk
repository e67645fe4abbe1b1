# The daemons: one program per folder, added once the folder has sources.
$(if $(wildcard daemons/master/*.c),$(eval $(call phx_prog,phx-master,daemons/master)))
$(if $(wildcard daemons/agent/*.c),$(eval $(call phx_prog,phx-agent,daemons/agent)))
$(if $(wildcard daemons/batchd/*.c),$(eval $(call phx_prog,phx-batchd,daemons/batchd)))

# phx-shim, the agent's per-task supervisor (daemons/agent/shim): libc only,
# linked statically so that it starts fast (dynamically under sanitizers).
# With musl where musl-gcc is installed (Debian: musl-tools; SHIM_CC= to
# use $(CC) and glibc): a static glibc program spends ~0.15 ms of CPU
# starting on a virtual machine (its CPUID probes of the caches trap to the
# hypervisor, then /proc/self/exe, IFUNC relocations, the page faults of
# 750 KB), a static musl one ~0.06, and the shim starts once per task.
# The musl objects live apart from glibc's, so the two never mix.
ifneq ($(wildcard daemons/agent/shim/*.c),)
SHIM_CC ?= $(if $(SANFLAGS),,$(shell command -v musl-gcc 2>/dev/null))
phx-shim_SRCS := $(sort $(wildcard daemons/agent/shim/*.c))
ifneq ($(SHIM_CC),)
phx-shim_OBJS := $(patsubst daemons/agent/shim/%.c,$(BUILD)/shim-musl/%.o,$(phx-shim_SRCS))
$(BUILD)/shim-musl/%.o: daemons/agent/shim/%.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $< (musl)")
	$(Q)$(SHIM_CC) -std=gnu11 $(WARN) $(CFLAGS) -I. -D_GNU_SOURCE -MMD -MP -c -o $@ $<
$(BUILD)/bin/phx-shim: $(phx-shim_OBJS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LINK    $@ (musl)")
	$(Q)$(SHIM_CC) $(LDFLAGS) -static -o $@ $(phx-shim_OBJS)
else
phx-shim_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(phx-shim_SRCS))
$(BUILD)/bin/phx-shim: $(phx-shim_OBJS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $(if $(SANFLAGS),,-static) -o $@ $(phx-shim_OBJS)
endif
PROGRAMS += $(BUILD)/bin/phx-shim
endif

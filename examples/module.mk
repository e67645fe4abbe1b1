# Example programs: examples/<name>.c → $(BUILD)/examples/<name>, linked with
# the libraries like the daemons.
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRCS))
$(BUILD)/examples/%: $(BUILD)/examples/%.o $(LINK_LIBS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LINK_LIBS) $(LIBS_ALL)
PROGRAMS += $(EXAMPLES)

# Unit tests: tests/unit/test_<module>.c, one cmocka binary each, linked with
# tests/unit/support/*.c.  Benchmarks: tests/bench/bench_<name>.c.
#
# The support files go in an archive, so a test binary gets only those it
# uses: a support file may then call daemon code that is in no library and
# that only its tests compile in (allocsim.c calls the allocator, which
# test_alloc*.c include).
UNIT_SUPPORT_SRCS := $(sort $(wildcard tests/unit/support/*.c))
UNIT_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(UNIT_SUPPORT_SRCS))
UNIT_SUPPORT_LIB := $(BUILD)/tests/libunitsupport.a
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))

$(UNIT_SUPPORT_LIB): $(UNIT_SUPPORT_OBJS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(UNIT_SUPPORT_LIB) $(LINK_LIBS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(UNIT_SUPPORT_LIB) $(LINK_LIBS) $(CMOCKA_LIBS) $(LIBS_ALL)

$(BUILD)/tests/unit/%.o: ALL_CFLAGS += $(CMOCKA_CFLAGS)

BENCH_SRCS := $(sort $(wildcard tests/bench/bench_*.c))
BENCHES := $(patsubst tests/bench/%.c,$(BUILD)/tests/bench/%,$(BENCH_SRCS))

$(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(LINK_LIBS)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LINK    $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LINK_LIBS) $(LIBS_ALL)

# MPI test programs for end-to-end tests, built with mpicc.
MPI_PROG_SRCS := $(sort $(wildcard tests/e2e/progs/mpi_*.c))
MPI_PROGS := $(patsubst tests/e2e/progs/%.c,$(BUILD)/tests/progs/%,$(MPI_PROG_SRCS))
$(BUILD)/tests/progs/mpi_%: tests/e2e/progs/mpi_%.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  MPICC   $@")
	$(Q)mpicc -O2 -Wall -o $@ $<
PROGRAMS += $(MPI_PROGS)

# PMIx clients without MPI for end-to-end tests (a fence of a chosen size).
PMIX_PROG_SRCS := $(sort $(wildcard tests/e2e/progs/pmix_*.c))
PMIX_PROGS := $(patsubst tests/e2e/progs/%.c,$(BUILD)/tests/progs/%,$(PMIX_PROG_SRCS))
$(BUILD)/tests/progs/pmix_%: tests/e2e/progs/pmix_%.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) -std=gnu11 -O2 -Wall $(shell pkg-config --cflags pmix) -o $@ $< \
	    $(shell pkg-config --libs pmix)
PROGRAMS += $(PMIX_PROGS)

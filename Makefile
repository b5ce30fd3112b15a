# ctape — one Makefile. Every output goes under build/.
#   make            libraries, tests, examples and benchmarks (float32) in build/
#   make test       the suite in float32, then the gradient checks in float64
#   make demo       train an MLP on Fashion-MNIST for one epoch with the ctape command (runs/demo)
#   make data       fetch MNIST, KMNIST, CIFAR-10/100 into data/ (checksummed); Fashion-MNIST from Debian
#   make bench      W1 (MLP, one epoch of Fashion-MNIST) against PyTorch when it is installed
#   make install    PREFIX=/usr/local: headers, libctape.a, libctape.so.$(SOVERSION), ctape.pc, ctape-static.pc
#   make help       every target and option, one line each
#   make fuzz       libFuzzer harnesses (clang, ASan + UBSan), each run FUZZ_SECONDS (default 60)
# Options: PRECISION=64 (float64 flavour, build/f64), SANITIZE=1 (ASan + UBSan, build/asan),
#          MPI=1 (data-parallel over Open MPI: mpicc, CT_MPI, build/mpi; make test MPI=1 adds the mpirun tests).

PRECISION ?= 32
NATIVE ?= 0
# The library's version; the soname libctape.so.$(SOVERSION) changes when the ABI breaks. Before
# 1.0 every minor version may break it, so the soname carries major.minor (0.2: the loss-spec
# layout, the eval-transform values and the trainer's options changed since 0.1).
VERSION := 0.2.0
SOVERSION := 0.2
SANITIZE ?= 0
MPI ?= 0
PREFIX ?= /usr/local
CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif

BUILDROOT ?= build
BUILD := $(BUILDROOT)
ifeq ($(SANITIZE),1)
BUILD := $(BUILD)/asan
endif
ifeq ($(PRECISION),64)
BUILD := $(BUILD)/f64
endif
ifeq ($(NATIVE),1)
BUILD := $(BUILD)/native
endif
# Open MPI's compiler wrapper adds mpi.h and libmpi; only this flavour needs them (core/dist.c).
ifeq ($(MPI),1)
BUILD := $(BUILD)/mpi
CC := mpicc
CPPFLAGS += -DCT_MPI
endif

# OpenBLAS built on OpenMP, so BLAS and our OpenMP loops share one thread pool. Debian's default
# (pthread) OpenBLAS keeps its own spinning threads beside OpenMP's and runs W1 about 5x slower
# on 2 cores. Both flavours share the soname libopenblas.so.0, so the rpath picks ours at run time.
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
OPENBLAS_DIR := /usr/lib/$(MULTIARCH)/openblas-openmp
OPENBLAS_INC := /usr/include/$(MULTIARCH)/openblas-openmp
CPPFLAGS += -I. -D_GNU_SOURCE -I$(OPENBLAS_INC)
# NATIVE=0 (the default): a library for any x86-64 CPU (baseline instructions, generic tuning)
# whose hot loops (CT_KERNEL in core/core.h) carry AVX2 and AVX-512 copies picked at load time;
# valgrind runs it. NATIVE=1, in build/native: for this CPU only (-march=native; valgrind stops
# on its AVX-512 instructions).
ifeq ($(NATIVE),1)
CFLAGS ?= -O3 -march=native
else ifeq ($(shell uname -m),x86_64)
CFLAGS ?= -O3 -march=x86-64 -mtune=generic
else
CFLAGS ?= -O3
endif
CFLAGS += -std=c11 -Wall -Wextra -Werror -fopenmp -fPIC -MMD -MP
# sqrt never sets errno (nothing reads it): without this GCC guards every sqrt with a branch
# that calls libm for errno, and the optimizers' update loops (Adam, RMSprop, ...) do not vectorise.
CFLAGS += -fno-math-errno
# a·b + c as one fused multiply-add where the CPU has one: -std=c11 turns GCC's contraction off,
# and the vectorised exp/log polynomials (autograd/internal.h, vmath.h) then take twice the
# instructions (W5's (1024, 10) exp loop: 3.9 -> 2.9 µs). Only a·b + c is fused, one rounding
# fewer. Not in the float64 build, which is for gradient checks: with it, the central difference
# of one SupCon check (132 anchors) moved by 1.1e-7 on a gradient of 2.7e-4 and failed.
ifneq ($(PRECISION),64)
CFLAGS += -ffp-contract=fast
endif
LDLIBS += -lopenblas -lstb -lm -lpthread
LDFLAGS += -fopenmp -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR)
ifeq ($(PRECISION),64)
CPPFLAGS += -DCT_PRECISION_64
endif
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g
LDFLAGS += -fsanitize=address,undefined
endif

LIB_DIRS := core autograd nn losses optim data
LIB_SRC := $(wildcard $(addsuffix /*.c,$(LIB_DIRS)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TEST_DIRS := core autograd nn losses optim data examples
TEST_SRC := $(wildcard tests/*.c $(addprefix tests/,$(addsuffix /*.c,$(TEST_DIRS))))
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c examples/learn/*.c))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
# The ctape command (examples/ctape/): train, resume, eval, plot and list without writing C.
COMMAND_SRC := $(wildcard examples/ctape/*.c)
COMMAND_OBJ := $(COMMAND_SRC:%.c=$(BUILD)/obj/%.o)
COMMAND := $(BUILD)/ctape
HEADERS := ctape.h $(wildcard $(addsuffix /*.h,$(LIB_DIRS)))
PUBLIC_HEADERS := ctape.h core/core.h core/dist.h core/vmath.h core/plot.h core/spec.h core/safetensors.h autograd/ops.h \
	autograd/op.h autograd/reference.h nn/nn.h nn/layer.h nn/zoo.h losses/losses.h losses/metrics.h losses/analysis.h \
	optim/optim.h optim/schedule.h optim/literature.h optim/optimizer.h optim/registry.h optim/trainer.h optim/dist.h optim/arena.h \
	optim/probe.h optim/sharpness.h data/data.h data/conditions.h

LIBA := $(BUILD)/libctape.a
LIBSO_REAL := $(BUILD)/libctape.so.$(VERSION)
LIBSO := $(BUILD)/libctape.so
TESTBIN := $(BUILD)/tests/ctape_tests

DEPS_STAMP := $(BUILD)/.deps-ok
BUILD_PACKAGES := libopenblas-openmp-dev libstb-dev
ifeq ($(MPI),1)
BUILD_PACKAGES += openmpi-bin libopenmpi-dev
endif
DEMO_PACKAGES := dataset-fashion-mnist
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: all test test-f32 test-f64 test-install test-mpi demo bench data install clean deps demo-deps help
.DELETE_ON_ERROR:
.SECONDARY:

# The mpirun tests' program (tests/mpi/), in the MPI flavour.
MPI_CHECK := $(BUILD)/tests/mpi_check

all: $(LIBA) $(LIBSO_REAL) $(LIBSO) $(TESTBIN) $(EXAMPLES) $(BENCHES) $(COMMAND) $(if $(filter 1,$(MPI)),$(MPI_CHECK))

# ---- system packages ---------------------------------------------------------------------
# Installed with apt-get when we are root; otherwise one message with the command to run.
define need_packages
missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
    echo "ctape: installing$$missing"; \
    (apt-get install -y -q $$missing || (apt-get update -q && apt-get install -y -q $$missing)) >/dev/null || exit 1; \
  else \
    echo "ctape: missing packages:$$missing. Install them with:"; \
    echo "    sudo apt-get install$$missing"; exit 1; \
  fi; \
fi
endef

deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	@$(call need_packages,$(BUILD_PACKAGES))
	@mkdir -p $(@D) && touch $@

demo-deps:
	@$(call need_packages,$(DEMO_PACKAGES))

# ---- build -------------------------------------------------------------------------------
# Objects are rebuilt when the compile flags change (a flag added here, or CFLAGS=... given):
# the stamp file holds the last command line and is rewritten only when it differs.
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(CPPFLAGS) $(CFLAGS)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD) && [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" = '$(FLAGS_NOW)' ] || echo '$(FLAGS_NOW)' > $(FLAGS_STAMP))
endif
$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC    $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# stb_image 2.27 (Debian's) multiplies a JPEG block's DC coefficient, a running sum of the file's
# differences, by its quantiser in int with no overflow check (stb 2.28 added one): a corrupt file
# can overflow it, which is undefined behaviour. -fwrapv defines it as wrapping, so such a file
# decodes to wrong pixels of a broken image instead.
STB_FLAGS := -fwrapv
$(BUILD)/obj/data/stb_image.o: CFLAGS += $(STB_FLAGS)

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $^

$(LIBSO_REAL): $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) -shared -Wl,-soname,libctape.so.$(SOVERSION) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libctape.so -> libctape.so.$(SOVERSION) -> libctape.so.$(VERSION), as installed
$(LIBSO): $(LIBSO_REAL)
	@ln -sf libctape.so.$(VERSION) $(BUILD)/libctape.so.$(SOVERSION)
	@ln -sf libctape.so.$(SOVERSION) $@

$(TESTBIN): $(TEST_OBJ) $(LIBA)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIBA) $(LDLIBS)

$(MPI_CHECK): $(BUILD)/obj/tests/mpi/mpi_check.o $(LIBA)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIBA)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

$(COMMAND): $(COMMAND_OBJ) $(LIBA)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $(COMMAND_OBJ) $(LIBA) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBA)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# ---- test: float32 suite, float64 gradient checks, the installed library ---------------------
# Sub-makes build each flavour in its own directory; -j is passed through. Each part writes its
# counts and scripts/test-summary sums them at the end; a failing part does not stop the others.
# With MPI=1: the float32 suite of the MPI flavour (one process, no mpirun), then tests/mpi/run.sh
# (mpirun on 1, 2 and 3 ranks).
COUNTS := $(BUILD)/test-counts
ifeq ($(MPI),1)
test:
	@rm -rf $(COUNTS) && mkdir -p $(COUNTS)
	@status=0; \
	$(MAKE) --no-print-directory test-f32 COUNTS_FILE=$(abspath $(COUNTS))/float32 || status=1; \
	$(MAKE) --no-print-directory test-mpi COUNTS_FILE=$(abspath $(COUNTS))/mpi || status=1; \
	bash scripts/test-summary --mpi $(COUNTS)/float32 $(COUNTS)/mpi || status=1; \
	exit $$status
else
test:
	@rm -rf $(COUNTS) && mkdir -p $(COUNTS)
	@status=0; \
	$(MAKE) --no-print-directory test-f32 COUNTS_FILE=$(abspath $(COUNTS))/float32 || status=1; \
	$(MAKE) --no-print-directory test-f64 PRECISION=64 COUNTS_FILE=$(abspath $(COUNTS))/float64 || status=1; \
	$(MAKE) --no-print-directory test-install SANITIZE=0 PRECISION=32 COUNTS_FILE=$(abspath $(COUNTS))/install || status=1; \
	bash scripts/test-summary $(COUNTS)/float32 $(COUNTS)/float64 $(COUNTS)/install || status=1; \
	exit $$status
endif

test-f32: $(TESTBIN) $(EXAMPLES) $(COMMAND)
	@echo "== ctape tests ($(if $(filter 64,$(PRECISION)),float64,float32)$(if $(filter 1,$(SANITIZE)), with sanitizers)) =="
	@$(TESTBIN) --skip-group gradcheck $(if $(COUNTS_FILE),--counts $(COUNTS_FILE))

test-f64: $(TESTBIN)
	@echo "== ctape gradient checks (float64$(if $(filter 1,$(SANITIZE)), with sanitizers)) =="
	@$(TESTBIN) --group gradcheck $(if $(COUNTS_FILE),--counts $(COUNTS_FILE))

test-mpi: $(MPI_CHECK)
	@echo "== mpirun tests (1, 2 and 3 ranks) =="
	@bash tests/mpi/run.sh $(MPI_CHECK) $(if $(COUNTS_FILE),--counts $(COUNTS_FILE))

# make install into a temporary prefix, then the README's training loop built with the README's
# pkg-config lines (libctape.so and libctape.a) and run for one epoch.
test-install: $(LIBA) $(LIBSO) demo-deps
	@echo "== install check: the README's training loop against a temporary make install =="
	@MAKE="$(MAKE)" bash tests/install_check.sh $(if $(COUNTS_FILE),--counts $(COUNTS_FILE))

# ---- demo and bench ----------------------------------------------------------------------
# Threads: CTAPE_THREADS (make demo CTAPE_THREADS=1, or in the environment), else all cores.
# The ctape command trains the MLP for one epoch and writes its log, pictures and summary.md into
# runs/demo (started over each time).
demo: demo-deps
	@$(MAKE) --no-print-directory $(COMMAND)
	$(COMMAND) train --model mlp --data fashion-mnist --epochs 1 --out runs/demo --force$(if $(CTAPE_THREADS), --threads $(CTAPE_THREADS))

# The standard datasets under data/<name>/ (scripts/get-data: checksummed downloads, Fashion-MNIST
# from Debian). DATASETS="mnist cifar10" picks some; the default is all of them.
data: demo-deps
	@bash scripts/get-data $(DATASETS)

bench: demo-deps
	@$(MAKE) --no-print-directory $(BENCHES)
	@bash bench/run.sh $(BUILD)

# ---- fuzz: libFuzzer harnesses, one per reader (tests/fuzz/fuzz_<reader>.c) -------------------
# Clang (Debian's clang, libclang-rt-14-dev, libomp-14-dev) with ASan + UBSan; the library is
# compiled again in its own build directory with -fsanitize=fuzzer-no-link. Each fuzzer runs for
# FUZZ_SECONDS on a working corpus in build/fuzz/corpus/<reader> seeded from tests/fuzz/corpus/<reader>
# (regenerate the seeds with `make fuzz-corpus`); a crash is saved as build/fuzz/crash-<reader>-*.
# FUZZERS="image idx_gz" picks some; FUZZ_FLAGS adds libFuzzer options.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS ?=
FUZZ_BUILD := $(BUILDROOT)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -g -O1 -fopenmp -Wall -Wextra -Wno-unknown-warning-option -Wno-pass-failed $(FUZZ_SAN)
FUZZ_HARNESSES := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_HARNESSES))
FUZZ_BINS := $(patsubst tests/fuzz/fuzz_%.c,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_HARNESSES))
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)

.PHONY: fuzz fuzz-build fuzz-corpus
fuzz: fuzz-build
	@for f in $(FUZZERS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$f; \
	  echo "== fuzz_$$f: $(FUZZ_SECONDS) s =="; \
	  $(FUZZ_BUILD)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$$f- $(FUZZ_FLAGS) $(FUZZ_BUILD)/corpus/$$f tests/fuzz/corpus/$$f \
	    2> $(FUZZ_BUILD)/fuzz_$$f.log || { tail -n 60 $(FUZZ_BUILD)/fuzz_$$f.log; exit 1; }; \
	  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|Done [0-9]+ runs" $(FUZZ_BUILD)/fuzz_$$f.log; \
	done

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  FUZZCC $<"
	@$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/obj/data/stb_image.o: FUZZ_CFLAGS += $(STB_FLAGS)

$(FUZZ_BUILD)/libctape.a: $(FUZZ_LIB_OBJ)
	@rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libctape.a
	@echo "  FUZZLD $@"
	@$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libctape.a \
	  -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) $(LDLIBS)

-include $(FUZZ_LIB_OBJ:.o=.d)

# The seed corpora: small valid files written by the library itself (tests/fuzz/make_corpus.c).
fuzz-corpus: $(BUILD)/fuzz_make_corpus
	@rm -rf tests/fuzz/corpus && $(BUILD)/fuzz_make_corpus tests/fuzz/corpus && du -sh tests/fuzz/corpus

$(BUILD)/fuzz_make_corpus: $(BUILD)/obj/tests/fuzz/make_corpus.o $(LIBA)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# ---- install -----------------------------------------------------------------------------
# ctape.pc links libctape.so, ctape-static.pc libctape.a. Under a prefix the dynamic loader does
# not search (not /usr or /usr/local), ctape.pc's Libs carry an rpath to $(PREFIX)/lib; under a
# system prefix ldconfig makes libctape.so.$(SOVERSION) known (run here as root without DESTDIR).
SYSTEM_PREFIX := $(filter /usr /usr/local,$(PREFIX))
LIBS_DEPS := -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR) -lopenblas -lstb -lm -lpthread -fopenmp
PC_DIR := $(DESTDIR)$(PREFIX)/lib/pkgconfig
PC_SED := sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	      -e 's|@PRECISION_CFLAGS@|$(filter -DCT_PRECISION_64,$(CPPFLAGS))|'
install: $(LIBA) $(LIBSO_REAL) $(LIBSO) $(COMMAND)
	install -d $(DESTDIR)$(PREFIX)/include/ctape $(PC_DIR) $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(COMMAND) $(DESTDIR)$(PREFIX)/bin/ctape
	for h in $(PUBLIC_HEADERS); do install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/ctape/$$h; done
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSO_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libctape.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libctape.so.$(SOVERSION)
	ln -sf libctape.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libctape.so
	$(PC_SED) -e 's|@NAME@|ctape|' -e 's|@DESCRIPTION@||' \
	    -e 's|@LIBS@|-L$${libdir} $(if $(SYSTEM_PREFIX),,-Wl,-rpath,$${libdir} )-lctape|' \
	    -e 's|@LIBS_PRIVATE@|$(LIBS_DEPS)|' ctape.pc.in > $(PC_DIR)/ctape.pc
	$(PC_SED) -e 's|@NAME@|ctape-static|' -e 's|@DESCRIPTION@| (libctape.a linked in)|' \
	    -e 's|@LIBS@|-L$${libdir} -l:libctape.a $(LIBS_DEPS)|' -e 's|@LIBS_PRIVATE@||' \
	    ctape.pc.in > $(PC_DIR)/ctape-static.pc
	@if [ -n "$(DESTDIR)" ]; then \
	  echo "ctape: staged under $(DESTDIR); run ldconfig once the files are in $(PREFIX)"; \
	elif [ -z "$(SYSTEM_PREFIX)" ]; then \
	  echo "ctape: programs built with pkg-config find $(PREFIX)/lib/libctape.so.$(SOVERSION) through the rpath in ctape.pc"; \
	  echo "ctape: for pkg-config to find ctape.pc:  export PKG_CONFIG_PATH=$(PREFIX)/lib/pkgconfig"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "ldconfig"; ldconfig; \
	else \
	  echo "ctape: run  sudo ldconfig  so that programs find $(PREFIX)/lib/libctape.so.$(SOVERSION)"; \
	fi
	@command -v pkg-config >/dev/null || echo "ctape: pkg-config is not installed:  sudo apt-get install pkg-config"
	@echo "ctape: build a program with  gcc prog.c \$$(pkg-config --cflags --libs ctape)  (or ctape-static for libctape.a)"

# ---- help --------------------------------------------------------------------------------
help:
	@echo "targets:"
	@echo "  make               libraries, tests, examples and benchmarks (float32) into build/"
	@echo "  make test          float32 suite, float64 gradient checks, install check; a summary at the end"
	@echo "  make test-f32      the float32 suite only (test-f64: the float64 gradient checks only)"
	@echo "  make test-install  make install into a temporary prefix, build and run the README's training loop"
	@echo "  make demo          ctape train: an MLP on Fashion-MNIST for one epoch into runs/demo (installs the dataset as root)"
	@echo "  make bench         the standard workloads W1-W5, against PyTorch when it is installed"
	@echo "  make data          MNIST, KMNIST, CIFAR-10/100 into data/ (checksummed); DATASETS=\"mnist ...\" picks some"
	@echo "  make install       headers, libctape.a, libctape.so.$(SOVERSION), ctape.pc, ctape-static.pc under PREFIX"
	@echo "  make deps          install the build packages (as root) or print the apt-get line"
	@echo "  make clean         remove build/"
	@echo "options:"
	@echo "  PRECISION=64       float64 flavour in build/f64 (the gradient checks)"
	@echo "  SANITIZE=1         AddressSanitizer + UndefinedBehaviorSanitizer build in build/asan"
	@echo "  PREFIX=DIR         install prefix (default /usr/local); DESTDIR=DIR stages a package"
	@echo "  NATIVE=0           (the default) a library for any x86-64 CPU (AVX2/AVX-512 loops picked at run time)"
	@echo "  NATIVE=1           for this CPU only (-march=native), in build/native"
	@echo "  MPI=1              data-parallel flavour over Open MPI (mpicc, CT_MPI) in build/mpi; make test MPI=1 runs mpirun tests"
	@echo "  CFLAGS=...         compiler flags in place of the defaults above"
	@echo "  CTAPE_THREADS=n    threads of OpenBLAS and OpenMP (make demo, tests, programs)"
	@echo "  BENCH_RUNS=n       runs per benchmark figure (default 3)"

clean:
	rm -rf $(BUILDROOT)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/obj/tests/mpi/mpi_check.d $(COMMAND_OBJ:.o=.d) $(EXAMPLES:$(BUILD)/examples/%=$(BUILD)/obj/examples/%.d) $(BENCHES:$(BUILD)/bench/%=$(BUILD)/obj/bench/%.d)

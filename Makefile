# ctape — one Makefile. Every output goes under build/.
#   make            libraries, tests, examples and benchmarks (float32) in build/
#   make test       the suite in float32, then the gradient checks in float64
#   make demo       train the MNIST MLP on Fashion-MNIST for one epoch
#   make data       fetch MNIST, KMNIST, CIFAR-10/100 into data/ (checksummed); Fashion-MNIST from Debian
#   make bench      W1 (MLP, one epoch of Fashion-MNIST) against PyTorch when it is installed
#   make install    PREFIX=/usr/local: headers, libctape.a, libctape.so, ctape.pc
#   make fuzz       libFuzzer harnesses (clang, ASan + UBSan), each run FUZZ_SECONDS (default 60)
# Options: PRECISION=64 (float64 flavour, build/f64), SANITIZE=1 (ASan + UBSan, build/asan).

PRECISION ?= 32
SANITIZE ?= 0
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

# OpenBLAS built on OpenMP, so BLAS and our OpenMP loops share one thread pool. Debian's default
# (pthread) OpenBLAS keeps its own spinning threads beside OpenMP's and runs W1 about 5x slower
# on 2 cores. Both flavours share the soname libopenblas.so.0, so the rpath picks ours at run time.
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
OPENBLAS_DIR := /usr/lib/$(MULTIARCH)/openblas-openmp
OPENBLAS_INC := /usr/include/$(MULTIARCH)/openblas-openmp
CPPFLAGS += -I. -D_GNU_SOURCE -I$(OPENBLAS_INC)
CFLAGS ?= -O3 -march=native
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
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
HEADERS := ctape.h $(wildcard $(addsuffix /*.h,$(LIB_DIRS)))
PUBLIC_HEADERS := ctape.h core/tensor.h autograd/ops.h nn/nn.h losses/losses.h optim/optim.h data/data.h

LIBA := $(BUILD)/libctape.a
LIBSO := $(BUILD)/libctape.so
TESTBIN := $(BUILD)/tests/ctape_tests

DEPS_STAMP := $(BUILD)/.deps-ok
BUILD_PACKAGES := libopenblas-openmp-dev libstb-dev
DEMO_PACKAGES := dataset-fashion-mnist
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: all test test-f32 test-f64 demo bench data install clean deps demo-deps
.DELETE_ON_ERROR:
.SECONDARY:

all: $(LIBA) $(LIBSO) $(TESTBIN) $(EXAMPLES) $(BENCHES)

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

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  AR    $@"
	@rm -f $@ && ar rcs $@ $^

$(LIBSO): $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TESTBIN): $(TEST_OBJ) $(LIBA)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIBA) $(LDLIBS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIBA)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBA)
	@mkdir -p $(@D)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# ---- test: float32 suite, then the gradient checks in float64 ---------------------------
# Sub-makes build each flavour in its own directory; -j is passed through.
test:
	@$(MAKE) --no-print-directory test-f32
	@$(MAKE) --no-print-directory test-f64 PRECISION=64

test-f32: $(TESTBIN) $(EXAMPLES)
	@echo "== ctape tests ($(if $(filter 64,$(PRECISION)),float64,float32)$(if $(filter 1,$(SANITIZE)), with sanitizers)) =="
	@$(TESTBIN) --skip-group gradcheck

test-f64: $(TESTBIN)
	@echo "== ctape gradient checks (float64$(if $(filter 1,$(SANITIZE)), with sanitizers)) =="
	@$(TESTBIN) --group gradcheck

# ---- demo and bench ----------------------------------------------------------------------
demo: demo-deps
	@$(MAKE) --no-print-directory $(BUILD)/examples/mnist_mlp
	$(BUILD)/examples/mnist_mlp --data $(FASHION_DIR) --epochs 1 --threads 2

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
install: $(LIBA) $(LIBSO)
	install -d $(DESTDIR)$(PREFIX)/include/ctape $(DESTDIR)$(PREFIX)/lib/pkgconfig
	for h in $(PUBLIC_HEADERS); do install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/ctape/$$h; done
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSO) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@OPENBLAS_DIR@|$(OPENBLAS_DIR)|g' \
	    -e 's|@PRECISION_CFLAGS@|$(filter -DCT_PRECISION_64,$(CPPFLAGS))|' ctape.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ctape.pc

clean:
	rm -rf $(BUILDROOT)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(EXAMPLES:$(BUILD)/examples/%=$(BUILD)/obj/examples/%.d) $(BENCHES:$(BUILD)/bench/%=$(BUILD)/obj/bench/%.d)

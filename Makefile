# Makefile for dms_lifecycle (PGXS)

EXTENSION = dms_lifecycle
MODULE_big = dms_lifecycle
OBJS = \
	src/lifecycle.o \
	src/catalog.o \
	src/request.o \
	src/guard.o \
	src/history.o \
	src/failures.o \
	src/actions.o \
	src/inspect.o \
	src/privileges.o \
	src/columns.o \
	src/write.o \
	src/change.o \
	src/prune.o \
	src/connection_options.o \
	src/engine/settings.o \
	src/engine/shared.o \
	src/engine/launcher.o \
	src/engine/jobs.o \
	src/engine/worker.o \
	src/engine/remote.o \
	src/engine/preflight.o \
	src/engine/copy.o \
	src/engine/stream.o \
	src/engine/lag.o \
	src/engine/promote.o

DATA = $(wildcard sql/dms_lifecycle--*.sql)

REGRESS = install labels states_actions events failures direct_writes bad_input hostile privileges overview ordinary_tables hostile_triggers prune engine_setup metrics random_walk
REGRESS_OPTS = --load-extension=plpgsql

ISOLATION = notify races create_index_concurrently
ISOLATION_OPTS =

# Crash, standby and dump/restore tests (PostgreSQL::Test::Cluster)
TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/src
# libpq, for the connection options of dms_lifecycle_connection (and the engine's connections),
# linked as contrib/dblink links it.
PG_CPPFLAGS += -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL = $(libpq)
# -Wextra with -Wno-unused-parameter: PostgreSQL's own headers have unused parameters.
# The test command adds -Werror (COPT=-Werror); a user's build does not stop on a new warning.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter

# No JIT bitcode: the functions are small, and the build then needs no clang.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object depends on the headers (PGXS tracks no header dependencies).  After PGXS,
# so that "all" stays the default goal.
$(OBJS): $(wildcard src/*.h src/engine/*.h)

# After PGXS, which sets it empty: -v prints a line per TAP test, which scripts/test counts.
PROVE_FLAGS = -v

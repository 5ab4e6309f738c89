/* geohm's forest kernel: exact, fast evaluation of fitted scikit-learn forests.

   A CPython extension module (geohm.models._forest_kernel), compiled by the package
   build (setup.py). geohm.models.kernel is its only caller: it builds the tables from
   checked scikit-learn trees, checks every argument, and splits rows over threads
   (each call releases the GIL). The arrays are passed as C-contiguous buffers; the
   lengths of the row-wise ones are checked here again, the tables are trusted.

   Routines (see geohm.models.kernel and geohm.models.forest_tables for the tables):
   walk          tree walk, mean (and exit nodes) of every row
   quickscorer   bit-vector evaluation (QuickScorer) of forests of small trees
   qrf_quantiles weighted quantiles of a quantile regression forest from leaf ids
   tree_votes    per row, the trees whose leaf value is above the row's threshold */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(_MSC_VER)
#include <intrin.h>
static inline int ctz64(uint64_t x)
{
  unsigned long i;
  _BitScanForward64(&i, x);
  return (int)i;
}
#else
static inline int ctz64(uint64_t x) { return __builtin_ctzll(x); }
#endif

/* x86-64, GCC and glibc: an AVX2 copy of the bit-vector kernel besides the portable one,
   picked when the module is loaded by the CPU it runs on (an ifunc); elsewhere the
   portable code only. Same operations in the same order: the same bits either way. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 6 && \
    defined(__GLIBC__)
#define CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CPU_CLONES
#endif

typedef struct {
  float thr;
  int32_t left;
  int32_t right;
  int16_t feat;
  int16_t nanright;
} node_t;

/* The first SLOTS weights of one leaf of a quantile regression forest (ranks i, weights
   w; unused slots: rank 0, weight +0.0), and where its other weights lie in the CSR
   arrays (rest..end). One cache line: a leaf's usual 1-3 weights are added without a
   data-dependent branch (an added +0.0 changes no sum: every sum starts at +0.0). */
#define SLOTS 4
typedef struct {
  int32_t i[SLOTS];
  double w[SLOTS];
  int64_t rest;
  int64_t end;
} slots_t;

/* ------------------------------------------------------------------ kernels */

/* Walk every tree, one tree at a time over all rows (the tree stays in cache); leaves
   point to themselves. out[] is summed in tree order, then divided, as scikit-learn.
   With ids (n x n_trees, row-major), also the exit node of each tree plus id_base[t]. */
static void walk(const float* X, int64_t n, int64_t stride, const node_t* nodes,
                 const int64_t* tree_off, const double* value, int32_t n_trees,
                 const int32_t* id_base, int32_t* ids, double* out)
{
  for (int64_t r = 0; r < n; r++) out[r] = 0.0;
  for (int32_t t = 0; t < n_trees; t++) {
    const node_t* tn = nodes + tree_off[t];
    const double* tv = value + tree_off[t];
    for (int64_t r = 0; r < n; r++) {
      const float* x = X + r * stride;
      int32_t i = 0;
      for (;;) {
        const node_t nd = tn[i];
        if (nd.left == i) break;
        const float v = x[nd.feat];
        i = ((v > nd.thr) | ((v != v) & nd.nanright)) ? nd.right : nd.left;
      }
      out[r] += tv[i];
      if (ids) ids[r * n_trees + t] = i + id_base[t];
    }
  }
  for (int64_t r = 0; r < n; r++) out[r] /= n_trees;
}

/* QuickScorer: per feature, AND the masks (n_words 64-bit words per tree) of the
   threshold interval holding x; the exit leaf is the lowest remaining bit. With ids,
   also leaf_node[leaf] (the exit node's id) + id_base[t] per tree. */
CPU_CLONES static void quickscorer(const float* X, int64_t n, int64_t stride, int32_t n_feat,
                        const float* thr, const int64_t* thr_off, const int32_t* thr_len,
                        const uint64_t* masks, const int64_t* mask_off,
                        const double* leaf_value, const int64_t* leaf_off, int32_t n_trees,
                        int32_t n_words, uint64_t* acc, double* out, const int32_t* leaf_node,
                        const int32_t* id_base, int32_t* ids)
{
  const int64_t width = (int64_t)n_trees * n_words;
  for (int64_t r = 0; r < n; r++) {
    const float* x = X + r * stride;
    for (int64_t k = 0; k < width; k++) acc[k] = ~(uint64_t)0;
    for (int32_t f = 0; f < n_feat; f++) {
      const int32_t len = thr_len[f];
      if (len == 0) continue;
      const float* T = thr + thr_off[f];
      const float v = x[f];
      int32_t b = 0;
      if (len <= 128) {
        for (int32_t j = 0; j < len; j++) b += T[j] < v;
      } else {
        int32_t lo = 0, hi = len;
        while (lo < hi) {
          const int32_t mid = (lo + hi) >> 1;
          if (T[mid] < v) lo = mid + 1; else hi = mid;
        }
        b = lo;
      }
      const uint64_t* m = masks + mask_off[f] + (int64_t)b * width;
      for (int64_t k = 0; k < width; k++) acc[k] &= m[k];
    }
    double s = 0.0;
    int32_t* row_ids = ids ? ids + r * n_trees : 0;
    for (int32_t t = 0; t < n_trees; t++) {
      const uint64_t* a = acc + (int64_t)t * n_words;
      int32_t w = 0;
      while (a[w] == 0) w++; /* the exit leaf's bit is always set */
      const int64_t leaf = leaf_off[t] + 64 * w + ctz64(a[w]);
      s += leaf_value[leaf];
      if (ids) row_ids[t] = leaf_node[leaf] + id_base[t];
    }
    out[r] = s / n_trees;
  }
}

static int cmp_i32(const void* a, const void* b)
{
  const int32_t x = *(const int32_t*)a, y = *(const int32_t*)b;
  return (x > y) - (x < y);
}

/* Weighted quantiles of a quantile regression forest. Row r's weight of training rank
   c is the sum, in tree order, of the CSR rows ids[r, t] (columns: ranks, ascending
   target); out[k * ld + r] = y_sorted at the first rank (ascending) whose running sum
   reaches qs[k] * total - 1e-9 (total: the running sum over all the row's ranks), i.e.
   inf{y : F(y | x) >= q}. buf: n_train zeros (left zero); touched: n_train int32.
   Few training samples (n_train <= 8 x the row's stored weights): the whole buffer is
   scanned, and the weights are added through slots (n_slots of each leaf's, the same
   sums in the same order); else the touched ranks are collected and sorted. Same sums
   either way. Returns 0, or -1 (nothing more done) at a row holding an id outside
   0..n_nodes-1 (checked here, where the ids are read anyway: no pass over them before). */
static int qrf_quantiles(const int32_t* ids, int64_t n, int32_t n_trees, int64_t n_nodes,
                         const int64_t* indptr, const int32_t* indices, const double* data,
                         const slots_t* slots, int32_t n_slots, const double* y_sorted,
                         int32_t n_train, const double* qs, int32_t n_q, double* buf,
                         int32_t* touched, double* out, int64_t ld)
{
  for (int64_t r = 0; r < n; r++) {
    const int32_t* row = ids + r * n_trees;
    int bad = 0;
    for (int32_t t = 0; t < n_trees; t++) bad |= (uint64_t)(uint32_t)row[t] >= (uint64_t)n_nodes;
    if (bad) return -1;
    int64_t stored = n_trees; /* a lower bound: a leaf holds training samples */
    if ((int64_t)n_train > 8 * stored) {
      stored = 0;
      for (int32_t t = 0; t < n_trees; t++) stored += indptr[row[t] + 1] - indptr[row[t]];
    }
    if ((int64_t)n_train <= 8 * stored) {
      if (slots) {
        for (int32_t t = 0; t < n_trees; t++) {
          const slots_t* l = slots + row[t];
          for (int32_t k = 0; k < n_slots; k++) buf[l->i[k]] += l->w[k];
          for (int64_t j = l->rest; j < l->end; j++) buf[indices[j]] += data[j];
        }
      } else {
        for (int32_t t = 0; t < n_trees; t++) {
          const int64_t end = indptr[row[t] + 1];
          for (int64_t j = indptr[row[t]]; j < end; j++) buf[indices[j]] += data[j];
        }
      }
      double total = 0.0;
      for (int32_t c = 0; c < n_train; c++) total += buf[c]; /* + 0.0 changes nothing */
      for (int32_t k = 0; k < n_q; k++) {
        const double target = qs[k] * total - 1e-9;
        double cum = 0.0;
        int32_t pos = -1, last = -1; /* last: the highest rank with a weight */
        for (int32_t c = 0; c < n_train; c++) {
          const double w = buf[c];
          if (w == 0.0) continue;
          cum += w;
          last = c;
          if (cum >= target) { pos = c; break; }
        }
        if (pos < 0) pos = last; /* not reached (rounding): the highest rank */
        out[k * ld + r] = pos < 0 ? NAN : y_sorted[pos];
      }
      for (int32_t c = 0; c < n_train; c++) buf[c] = 0.0;
      continue;
    }
    if (stored == 0) {
      for (int32_t k = 0; k < n_q; k++) out[k * ld + r] = NAN;
      continue;
    }
    int32_t m = 0;
    for (int32_t t = 0; t < n_trees; t++) {
      const int64_t end = indptr[row[t] + 1];
      for (int64_t j = indptr[row[t]]; j < end; j++) {
        const int32_t c = indices[j];
        if (buf[c] == 0.0) touched[m++] = c; /* weights are > 0 */
        buf[c] += data[j];
      }
    }
    if (m <= 16) {
      for (int32_t i = 1; i < m; i++) {
        const int32_t c = touched[i];
        int32_t j = i - 1;
        while (j >= 0 && touched[j] > c) { touched[j + 1] = touched[j]; j--; }
        touched[j + 1] = c;
      }
    } else {
      qsort(touched, (size_t)m, sizeof(int32_t), cmp_i32);
    }
    double total = 0.0;
    for (int32_t i = 0; i < m; i++) total += buf[touched[i]];
    for (int32_t k = 0; k < n_q; k++) {
      const double target = qs[k] * total - 1e-9;
      double cum = 0.0;
      int32_t pos = m - 1;
      for (int32_t i = 0; i < m; i++) {
        cum += buf[touched[i]];
        if (cum >= target) { pos = i; break; }
      }
      out[k * ld + r] = y_sorted[touched[pos]];
    }
    for (int32_t i = 0; i < m; i++) buf[touched[i]] = 0.0;
  }
  return 0;
}

/* Per row, the number of trees whose leaf value is above the row's threshold (ids:
   global leaf ids, row-major (n, n_trees); a NaN threshold counts no tree). Returns 0,
   or -1 (nothing more done) at a row holding an id outside 0..n_leaf-1. */
static int tree_votes(const int32_t* ids, int64_t n, int32_t n_trees, const double* leaf,
                      int64_t n_leaf, const double* thr, int32_t* count)
{
  for (int64_t r = 0; r < n; r++) {
    const int32_t* row = ids + r * (int64_t)n_trees;
    int bad = 0;
    for (int32_t k = 0; k < n_trees; k++) bad |= (uint64_t)(uint32_t)row[k] >= (uint64_t)n_leaf;
    if (bad) return -1;
    const double t = thr[r];
    int32_t c = 0;
    for (int32_t k = 0; k < n_trees; k++) c += leaf[row[k]] > t;
    count[r] = c;
  }
  return 0;
}

/* ------------------------------------------------------------ Python binding */

/* Buffers of one call, released together. */
#define MAX_BUFS 16
typedef struct {
  Py_buffer b[MAX_BUFS];
  int n;
} bufs_t;

static void release(bufs_t* s)
{
  for (int i = 0; i < s->n; i++) PyBuffer_Release(&s->b[i]);
  s->n = 0;
}

/* The C-contiguous buffer of obj (writable if asked) holding at least min_items items
   of item_size bytes; NULL (and an exception) otherwise. None gives NULL without one
   when optional. */
static void* take(bufs_t* s, PyObject* obj, Py_ssize_t item_size, Py_ssize_t min_items,
                  int writable, int optional, const char* name)
{
  if (optional && obj == Py_None) return NULL;
  Py_buffer* b = &s->b[s->n];
  if (PyObject_GetBuffer(obj, b, writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) return NULL;
  s->n++;
  if (b->len < item_size * min_items || b->len % item_size != 0) {
    PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, need %zd items of %zd bytes",
                 name, b->len, min_items, item_size);
    return NULL;
  }
  return b->buf;
}

static Py_ssize_t items(bufs_t* s, Py_ssize_t item_size) { return s->b[s->n - 1].len / item_size; }

#define TAKE(var, type, obj, min, writable, optional)                                   \
  do {                                                                                 \
    var = (type*)take(&bufs, obj, (Py_ssize_t)sizeof(type), min, writable, optional, #obj); \
    if (var == NULL && !(optional && obj == Py_None)) goto fail;                       \
  } while (0)

static PyObject* py_walk(PyObject* self, PyObject* args)
{
  PyObject *oX, *onodes, *otree_off, *ovalue, *oout, *oid_base, *oids;
  Py_ssize_t stride;
  bufs_t bufs = {.n = 0};
  const float* X;
  const node_t* nodes;
  const int64_t* tree_off;
  const double* value;
  double* out;
  const int32_t* id_base;
  int32_t* ids;
  (void)self;
  if (!PyArg_ParseTuple(args, "OnOOOOOO", &oX, &stride, &onodes, &otree_off, &ovalue, &oout,
                        &oid_base, &oids))
    return NULL;
  TAKE(out, double, oout, 0, 1, 0);
  const Py_ssize_t n = items(&bufs, sizeof(double));
  TAKE(tree_off, int64_t, otree_off, 1, 0, 0);
  const Py_ssize_t n_trees = items(&bufs, sizeof(int64_t));
  TAKE(X, float, oX, n * stride, 0, 0);
  TAKE(nodes, node_t, onodes, 1, 0, 0);
  TAKE(value, double, ovalue, 1, 0, 0);
  TAKE(id_base, int32_t, oid_base, n_trees, 0, 1);
  TAKE(ids, int32_t, oids, n * n_trees, 1, 1);
  if ((ids == NULL) != (id_base == NULL) || n_trees > INT32_MAX) {
    PyErr_SetString(PyExc_ValueError, "walk: ids and id_base go together");
    goto fail;
  }
  Py_BEGIN_ALLOW_THREADS
  walk(X, n, stride, nodes, tree_off, value, (int32_t)n_trees, id_base, ids, out);
  Py_END_ALLOW_THREADS
  release(&bufs);
  Py_RETURN_NONE;
fail:
  release(&bufs);
  return NULL;
}

static PyObject* py_quickscorer(PyObject* self, PyObject* args)
{
  PyObject *oX, *othr, *othr_off, *othr_len, *omasks, *omask_off, *oleaf_value, *oleaf_off;
  PyObject *oout, *oleaf_node, *oid_base, *oids;
  Py_ssize_t stride, n_words;
  bufs_t bufs = {.n = 0};
  const float *X, *thr;
  const int64_t *thr_off, *mask_off, *leaf_off;
  const int32_t *thr_len, *leaf_node, *id_base;
  const uint64_t* masks;
  const double* leaf_value;
  double* out;
  int32_t* ids;
  (void)self;
  if (!PyArg_ParseTuple(args, "OnOOOOOOOnOOOO", &oX, &stride, &othr, &othr_off, &othr_len,
                        &omasks, &omask_off, &oleaf_value, &oleaf_off, &n_words, &oout,
                        &oleaf_node, &oid_base, &oids))
    return NULL;
  TAKE(out, double, oout, 0, 1, 0);
  const Py_ssize_t n = items(&bufs, sizeof(double));
  TAKE(leaf_off, int64_t, oleaf_off, 1, 0, 0);
  const Py_ssize_t n_trees = items(&bufs, sizeof(int64_t));
  TAKE(thr_len, int32_t, othr_len, 0, 0, 0);
  const Py_ssize_t n_feat = items(&bufs, sizeof(int32_t));
  TAKE(X, float, oX, n * stride, 0, 0);
  TAKE(thr, float, othr, 0, 0, 0);
  TAKE(thr_off, int64_t, othr_off, n_feat, 0, 0);
  TAKE(masks, uint64_t, omasks, 0, 0, 0);
  TAKE(mask_off, int64_t, omask_off, n_feat, 0, 0);
  TAKE(leaf_value, double, oleaf_value, 1, 0, 0);
  TAKE(leaf_node, int32_t, oleaf_node, 1, 0, 1);
  TAKE(id_base, int32_t, oid_base, n_trees, 0, 1);
  TAKE(ids, int32_t, oids, n * n_trees, 1, 1);
  if ((ids == NULL) != (id_base == NULL) || (ids != NULL && leaf_node == NULL)) {
    PyErr_SetString(PyExc_ValueError, "quickscorer: ids need leaf_node and id_base");
    goto fail;
  }
  if (stride < n_feat || n_words < 1 || n_trees > INT32_MAX || n_words > INT32_MAX) {
    PyErr_SetString(PyExc_ValueError, "quickscorer: inconsistent sizes");
    goto fail;
  }
  uint64_t* acc = (uint64_t*)malloc(sizeof(uint64_t) * (size_t)(n_trees * n_words));
  if (acc == NULL) {
    PyErr_NoMemory();
    goto fail;
  }
  Py_BEGIN_ALLOW_THREADS
  quickscorer(X, n, stride, (int32_t)n_feat, thr, thr_off, thr_len, masks, mask_off,
              leaf_value, leaf_off, (int32_t)n_trees, (int32_t)n_words, acc, out, leaf_node,
              id_base, ids);
  Py_END_ALLOW_THREADS
  free(acc);
  release(&bufs);
  Py_RETURN_NONE;
fail:
  release(&bufs);
  return NULL;
}

static PyObject* py_qrf_quantiles(PyObject* self, PyObject* args)
{
  PyObject *oids, *oindptr, *oindices, *odata, *oslots, *oy, *oqs, *oout;
  Py_ssize_t n_trees, n_slots, ld, col0;
  bufs_t bufs = {.n = 0};
  const int32_t *ids, *indices;
  const int64_t* indptr;
  const double *data, *y_sorted, *qs;
  const slots_t* slots;
  double* out;
  (void)self;
  if (!PyArg_ParseTuple(args, "OnOOOOnOOOnn", &oids, &n_trees, &oindptr, &oindices, &odata,
                        &oslots, &n_slots, &oy, &oqs, &oout, &ld, &col0))
    return NULL;
  if (n_trees < 1 || n_trees > INT32_MAX || col0 < 0 || n_slots < 0 || n_slots > SLOTS) {
    PyErr_SetString(PyExc_ValueError, "qrf_quantiles: inconsistent sizes");
    return NULL;
  }
  TAKE(ids, int32_t, oids, 0, 0, 0);
  const Py_ssize_t n = items(&bufs, sizeof(int32_t)) / n_trees;
  TAKE(y_sorted, double, oy, 0, 0, 0);
  const Py_ssize_t n_train = items(&bufs, sizeof(double));
  TAKE(qs, double, oqs, 0, 0, 0);
  const Py_ssize_t n_q = items(&bufs, sizeof(double));
  TAKE(indptr, int64_t, oindptr, 1, 0, 0);
  const Py_ssize_t n_nodes = items(&bufs, sizeof(int64_t)) - 1;
  TAKE(indices, int32_t, oindices, 0, 0, 0);
  TAKE(data, double, odata, 0, 0, 0);
  TAKE(slots, slots_t, oslots, n_nodes, 0, 1);
  TAKE(out, double, oout, n_q > 0 ? (n_q - 1) * ld + col0 + n : 0, 1, 0);
  if (ld < col0 + n || n_train > INT32_MAX || n_q > INT32_MAX) {
    PyErr_SetString(PyExc_ValueError, "qrf_quantiles: inconsistent sizes");
    goto fail;
  }
  double* buf = (double*)calloc((size_t)n_train + 1, sizeof(double));
  int32_t* touched = (int32_t*)malloc(sizeof(int32_t) * ((size_t)n_train + 1));
  if (buf == NULL || touched == NULL) {
    free(buf);
    free(touched);
    PyErr_NoMemory();
    goto fail;
  }
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = qrf_quantiles(ids, n, (int32_t)n_trees, n_nodes, indptr, indices, data, slots,
                         (int32_t)n_slots, y_sorted, (int32_t)n_train, qs, (int32_t)n_q, buf,
                         touched, out + col0, ld);
  Py_END_ALLOW_THREADS
  free(buf);
  free(touched);
  release(&bufs);
  if (status) {
    PyErr_SetString(PyExc_ValueError, "a leaf id is outside the weight matrix");
    return NULL;
  }
  Py_RETURN_NONE;
fail:
  release(&bufs);
  return NULL;
}

static PyObject* py_tree_votes(PyObject* self, PyObject* args)
{
  PyObject *oids, *oleaf, *othr, *ocount;
  Py_ssize_t n_trees;
  bufs_t bufs = {.n = 0};
  const int32_t* ids;
  const double *leaf, *thr;
  int32_t* count;
  (void)self;
  if (!PyArg_ParseTuple(args, "OnOOO", &oids, &n_trees, &oleaf, &othr, &ocount)) return NULL;
  if (n_trees < 1 || n_trees > INT32_MAX) {
    PyErr_SetString(PyExc_ValueError, "tree_votes: n_trees out of range");
    return NULL;
  }
  TAKE(count, int32_t, ocount, 0, 1, 0);
  const Py_ssize_t n = items(&bufs, sizeof(int32_t));
  TAKE(ids, int32_t, oids, n * n_trees, 0, 0);
  TAKE(thr, double, othr, n, 0, 0);
  TAKE(leaf, double, oleaf, 1, 0, 0);
  const Py_ssize_t n_leaf = items(&bufs, sizeof(double));
  int status;
  Py_BEGIN_ALLOW_THREADS
  status = tree_votes(ids, n, (int32_t)n_trees, leaf, n_leaf, thr, count);
  Py_END_ALLOW_THREADS
  release(&bufs);
  if (status) {
    PyErr_SetString(PyExc_ValueError, "a leaf id is outside leaf_values");
    return NULL;
  }
  Py_RETURN_NONE;
fail:
  release(&bufs);
  return NULL;
}

static PyMethodDef methods[] = {
    {"walk", py_walk, METH_VARARGS,
     "walk(X, stride, nodes, tree_off, value, out, id_base, ids): tree walk of len(out) rows."},
    {"quickscorer", py_quickscorer, METH_VARARGS,
     "quickscorer(X, stride, thr, thr_off, thr_len, masks, mask_off, leaf_value, leaf_off, "
     "n_words, out, leaf_node, id_base, ids): bit-vector evaluation of len(out) rows."},
    {"qrf_quantiles", py_qrf_quantiles, METH_VARARGS,
     "qrf_quantiles(ids, n_trees, indptr, indices, data, slots, n_slots, y_sorted, qs, out, "
     "ld, col0)."},
    {"tree_votes", py_tree_votes, METH_VARARGS,
     "tree_votes(ids, n_trees, leaf, thr, count): trees above each row's threshold."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_forest_kernel",
    "geohm's compiled forest kernel (called through geohm.models.kernel only).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__forest_kernel(void) { return PyModule_Create(&module); }

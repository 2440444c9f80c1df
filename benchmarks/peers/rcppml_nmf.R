# RcppML's nmf() for benchmarks/bench_cpu.py: read X, fit it for each requested number of
# iterations, write each fit's factors for Python to score, print each fit's time.
#
#   Rscript rcppml_nmf.R X.bin dense|sparse n m nnz k seed threads OUT maxit1,maxit2,...
#
# X.bin: dense, n*m float64 row-major; sparse, CSC as int32 indptr (m+1), int32 indices
# (nnz), float64 data (nnz). Each fit runs exactly maxit iterations (tol far below reach) from
# the same random start (seed), so the fits are prefixes of one trajectory. Written per fit:
# OUT_<maxit>_w.bin (n*k float64, row-major, w·diag(d)) and OUT_<maxit>_h.bin (k*m, row-major).
# Printed per fit: "fit <maxit> <seconds of nmf() alone> <iterations RcppML reports>".
args <- commandArgs(trailingOnly = TRUE)
xfile <- args[1]; kind <- args[2]
n <- as.integer(args[3]); m <- as.integer(args[4]); nnz <- as.integer(args[5])
k <- as.integer(args[6]); seed <- as.integer(args[7]); threads <- as.integer(args[8])
out <- args[9]; maxits <- as.integer(strsplit(args[10], ",")[[1]])
suppressPackageStartupMessages({library(Matrix); library(RcppML)})
con <- file(xfile, "rb")
if (kind == "dense") {
  A <- matrix(readBin(con, "double", n * m), nrow = n, ncol = m, byrow = TRUE)
} else {
  p <- readBin(con, "integer", m + 1, size = 4)
  i <- readBin(con, "integer", nnz, size = 4)
  x <- readBin(con, "double", nnz)
  A <- sparseMatrix(i = i, p = p, x = x, dims = c(n, m), index1 = FALSE)
}
close(con)
setRcppMLthreads(threads)
write_f64 <- function(v, path) { f <- file(path, "wb"); writeBin(as.double(v), f); close(f) }
for (it in maxits) {
  t0 <- proc.time()[["elapsed"]]
  model <- RcppML::nmf(A, k, tol = 1e-30, maxit = it, verbose = FALSE, seed = seed)
  t <- proc.time()[["elapsed"]] - t0
  w <- model$w %*% diag(model$d, nrow = k)
  write_f64(t(w), paste0(out, "_", it, "_w.bin"))   # t(): R is column-major
  write_f64(t(model$h), paste0(out, "_", it, "_h.bin"))
  iters <- if (is.null(model$iter)) NA else model$iter
  cat("fit", it, t, iters, "\n")
}

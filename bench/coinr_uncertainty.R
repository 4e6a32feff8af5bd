# COINr's uncertainty analysis of its ASEM example, as in its sensitivity vignette: the peer run
# of bench/index_uncertainty.py and bench/whole_commands.py.
#
# Four assumptions (vignette "Sensitivity analysis"): Winsorisation limit 1-5 points; min-max
# 1-100 vs z-score mean 10 sd 2; pillar and sub-index weights with 25% noise (one noisy weight
# set per replication); arithmetic vs geometric mean. Target: the Index in the Aggregated set.
#
# Usage: Rscript bench/coinr_uncertainty.R N [OUT.csv]
# Prints "seconds=<get_sensitivity time>" and writes the median rank and 5-95% interval per unit.

suppressPackageStartupMessages(library(COINr))

args <- commandArgs(trailingOnly = TRUE)
n_rep <- if (length(args) >= 1) as.integer(args[[1]]) else 1000L
out_csv <- if (length(args) >= 2) args[[2]] else NA

coin <- build_example_coin(quietly = TRUE)
# The example coin aggregates with w = NULL (its metadata weights, "Original"); get_sensitivity()
# asks "Continue anyway (y/n)?" on a NULL address, which Rscript answers with nothing and stops.
coin$Log$Aggregate$w <- "Original"

noise_specs <- data.frame(Level = c(2, 3), NoiseFactor = c(0.25, 0.25))
noisy_wts <- get_noisy_weights(w = coin$Meta$Weights$Original, noise_specs = noise_specs,
                               Nrep = n_rep)
SA_specs <- list(
  Winmax = list(Address = "$Log$Treat$global_specs$f1_para$winmax",
                Distribution = 1:5, Type = "discrete"),
  Normalisation = list(Address = "$Log$Normalise$global_specs",
                       Distribution = list(
                         list(f_n = "n_minmax", f_n_para = list(c(1, 100))),
                         list(f_n = "n_zscore", f_n_para = list(c(10, 2)))),
                       Type = "discrete"),
  Weights = list(Address = "$Log$Aggregate$w", Distribution = noisy_wts, Type = "discrete"),
  Aggregation = list(Address = "$Log$Aggregate$f_ag",
                     Distribution = c("a_amean", "a_gmean"), Type = "discrete")
)

set.seed(1)
started <- proc.time()[["elapsed"]]
res <- get_sensitivity(coin, SA_specs = SA_specs, N = n_rep, SA_type = "UA",
                       dset = "Aggregated", iCode = "Index", quietly = TRUE)
seconds <- proc.time()[["elapsed"]] - started
cat(sprintf("seconds=%.3f\n", seconds))
cat(sprintf("replications=%d\n", n_rep))
if (!is.na(out_csv)) {
  write.csv(res$RankStats, out_csv, row.names = FALSE)
}

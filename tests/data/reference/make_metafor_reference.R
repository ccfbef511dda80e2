## make_metafor_reference.R -- reference values for scalingfit.population.random_effects.
##
## Run from this directory:   Rscript make_metafor_reference.R
## Writes metafor_reference.json next to this script.
##
## Requirements (Debian bookworm): r-base-core r-cran-metafor r-cran-jsonlite
## Each dataset is analysed with
##   rma(yi, vi, method = "REML", test = "knha", control = list(threshold = 1e-12, maxiter = 1000))
## (untruncated Hartung-Knapp-Sidik-Jonkman: metafor 3.8's knha does not truncate the scale),
## confint(..., control = list(tol = 1e-12)) for the Q-profile interval of tau^2,
## rma(method = "FE") for the common-effect average and rma(method = "DL") for the DL tau^2.
## metafor 3.8's predict() uses t(k - 1) for the prediction interval under knha; the
## Higgins et al. (2009) / IntHout et al. (2016) interval with t(k - 2) is computed here from
## metafor's tau^2 and SE (pi_riley_*), which is what scalingfit reports.
suppressPackageStartupMessages({ library(metafor); library(jsonlite) })

dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
sets <- list(
  bcg = list(yi = as.numeric(dat$yi), vi = as.numeric(dat$vi),
             what = "dat.bcg log risk ratios (Colditz et al. 1994), escalc(measure='RR')"),
  two = list(yi = c(-0.12, 0.31), vi = c(0.010, 0.025),
             what = "F = 2, heterogeneous"),
  three = list(yi = c(0.05, -0.21, 0.40), vi = c(0.004, 0.009, 0.006),
               what = "F = 3, heterogeneous"),
  four = list(yi = c(0.10, 0.30, -0.20, 0.50), vi = c(0.010, 0.020, 0.015, 0.030),
              what = "F = 4, heterogeneous"),
  four_homog = list(yi = c(0.10, 0.12, 0.09, 0.11), vi = c(0.010, 0.020, 0.015, 0.030),
                    what = "F = 4, tau^2 estimated at the boundary 0")
)
ctl <- list(threshold = 1e-12, maxiter = 1000)
out <- list()
for (nm in names(sets)) {
  s <- sets[[nm]]
  k <- length(s$yi)
  r <- rma(s$yi, s$vi, method = "REML", test = "knha", control = ctl)
  fe <- rma(s$yi, s$vi, method = "FE")
  dl <- rma(s$yi, s$vi, method = "DL")
  rec <- list(what = s$what, yi = s$yi, vi = s$vi, k = k,
              estimate = as.numeric(r$beta), se = r$se, tval = r$zval, df = k - 1,
              pval = r$pval, ci_lb = r$ci.lb, ci_ub = r$ci.ub, tau2 = r$tau2,
              I2 = r$I2, QE = r$QE, QEp = r$QEp, s2w = r$s2w,
              fe_estimate = as.numeric(fe$beta), fe_se = fe$se, dl_tau2 = dl$tau2)
  if (k >= 3) {
    ci <- confint(r, control = list(tol = 1e-12))
    rec$tau2_ci_lb <- ci$random["tau^2", "ci.lb"]
    rec$tau2_ci_ub <- ci$random["tau^2", "ci.ub"]
    p <- predict(r)
    rec$pi_metafor_lb <- p$pi.lb
    rec$pi_metafor_ub <- p$pi.ub
    half <- qt(0.975, k - 2) * sqrt(r$tau2 + r$se^2)
    rec$pi_riley_lb <- as.numeric(r$beta) - half
    rec$pi_riley_ub <- as.numeric(r$beta) + half
  }
  out[[nm]] <- rec
}
meta <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")),
             jsonlite = as.character(packageVersion("jsonlite")),
             made = "Rscript make_metafor_reference.R")
writeLines(toJSON(list(meta = meta, datasets = out), digits = NA, auto_unbox = TRUE,
                  pretty = TRUE), "metafor_reference.json")

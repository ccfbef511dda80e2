## make_reference.R -- reference values for the scalingfit U-shape tests.
##
## Run from this directory:   Rscript make_reference.R
## Writes reference_values.json next to this script.
##
## Parts
##   (0) datasets (deterministic, no RNG)
##   (1) Simonsohn (2018) two-lines test: the author's verbatim code
##       (twolines_simonsohn.R) is run, and every step is re-derived
##       transparently below and checked against it (stopifnot).
##   (2) Lind & Mehlum (2010) / Sasabuchi U test on y = b0 + b1 x + b2 x^2,
##       written out with lm() + vcov(), incl. the Fieller interval of the
##       turning point (checked against the closed form used in Stata utest.ado).
##
## Requirements (Debian): r-base-core r-cran-mgcv r-cran-sandwich r-cran-lmtest
##                        r-cran-jsonlite r-cran-stringr

## ---- (1a) the author's code ---------------------------------------------------
## Sourced FIRST and into the global environment, exactly as the app does.
## Caveat of that code: twolines() attach()es `data` and looks variables up by
## name via eval(parse()), so NO global object may be called `x` or `y`
## (it would mask the attached columns).  All our globals below have other names.
source("twolines_simonsohn.R")
suppressPackageStartupMessages({
  library(mgcv); library(sandwich); library(lmtest); library(jsonlite)
})

## ---- (0) datasets ------------------------------------------------------------
## x is the same for both datasets, deliberately NOT equally spaced nor
## symmetric (so that e.g. SE(slope at x_min) != SE(slope at x_max)):
##   x_i = i + ((3 i) mod 7)/10,  i = 1..30      (x in [1.3, 30.6], all unique)
## (i) U shape:            y_i = 0.03 (x_i - 17)^2 + ((7 i) mod 11 - 5)/2.5
## (ii) monotone concave:  y_i = 3 log(x_i)        + ((5 i) mod 13 - 6)/6
## The "noise" is a deterministic pseudo-random sequence (no RNG); the exact
## x and y vectors are written to the JSON anyway.
idx <- 1:30
xx <- idx + ((3 * idx) %% 7) / 10
datasets <- list(
  u_shape = data.frame(x = xx,
                       y = 0.03 * (xx - 17)^2 + ((7 * idx) %% 11 - 5) / 2.5),
  log_monotone = data.frame(x = xx,
                            y = 3 * log(xx) + ((5 * idx) %% 13 - 6) / 6)
)
datasets_def <- list(
  u_shape = "i = 1..30; x_i = i + ((3*i) %% 7)/10; y_i = 0.03*(x_i - 17)^2 + ((7*i) %% 11 - 5)/2.5",
  log_monotone = "i = 1..30; x_i = i + ((3*i) %% 7)/10; y_i = 3*log(x_i) + ((5*i) %% 13 - 6)/6"
)

## ---- helpers -----------------------------------------------------------------
## Interrupted regression at breakpoint xc, parameterised exactly as reg2():
##   line 1 (xc belongs to the LOW line):  xlow1 = ifelse(x <= xc, x-xc, 0)
##                                          xhigh1= ifelse(x >  xc, x-xc, 0)
##                                          high1 = ifelse(x >  xc, 1, 0)
##   line 2 (xc belongs to the HIGH line): xlow2 = ifelse(x <  xc, x-xc, 0)
##                                          xhigh2= ifelse(x >= xc, x-xc, 0)
##                                          high2 = ifelse(x >= xc, 1, 0)
##   slope 1 = coef of xlow1 in  y ~ xlow1 + xhigh1 + high1
##   slope 2 = coef of xhigh2 in y ~ xlow2 + xhigh2 + high2
interrupted <- function(xv, yv, xc) {
  d1 <- data.frame(yv = yv,
                   xlow = ifelse(xv <= xc, xv - xc, 0),
                   xhigh = ifelse(xv > xc, xv - xc, 0),
                   high = ifelse(xv > xc, 1, 0))
  d2 <- data.frame(yv = yv,
                   xlow = ifelse(xv < xc, xv - xc, 0),
                   xhigh = ifelse(xv >= xc, xv - xc, 0),
                   high = ifelse(xv >= xc, 1, 0))
  m1 <- lm(yv ~ xlow + xhigh + high, data = d1)
  m2 <- lm(yv ~ xlow + xhigh + high, data = d2)
  dfres <- m1$df.residual                      # n - 4
  one <- function(m, term) {
    b <- unname(coef(m)[term])
    out <- list(estimate = b)
    for (type in c("const", "HC0", "HC1", "HC2", "HC3")) {
      V <- if (type == "const") vcov(m) else vcovHC(m, type = type)
      se <- sqrt(V[term, term])
      tt <- b / se
      out[[type]] <- list(se = se, stat = tt,
                          p_normal_two_sided = 2 * pnorm(-abs(tt)),
                          p_t_two_sided = 2 * pt(-abs(tt), dfres))
    }
    out
  }
  list(xc = unname(xc), df_residual = dfres,
       n_low_line1 = sum(xv <= xc), n_high_line2 = sum(xv >= xc),
       design_line1 = list(xlow = d1$xlow, xhigh = d1$xhigh, high = d1$high),
       design_line2 = list(xlow = d2$xlow, xhigh = d2$xhigh, high = d2$high),
       coef_line1_model = as.list(coef(m1)), coef_line2_model = as.list(coef(m2)),
       slope1 = one(m1, "xlow"), slope2 = one(m2, "xhigh"))
}

## Lind-Mehlum test on [xmin, xmax] with a given vcov of (b1, b2).
lind_mehlum <- function(b, V, df, xmin, xmax, level = 0.95) {
  b1 <- b[1]; b2 <- b[2]
  s11 <- V[1, 1]; s12 <- V[1, 2]; s22 <- V[2, 2]
  slope <- function(x0) b1 + 2 * b2 * x0
  se <- function(x0) sqrt(s11 + 4 * x0 * s12 + 4 * x0^2 * s22)
  sl_min <- slope(xmin); sl_max <- slope(xmax)
  se_min <- se(xmin);    se_max <- se(xmax)
  t_min <- sl_min / se_min; t_max <- sl_max / se_max
  p_min <- pt(abs(t_min), df, lower.tail = FALSE)   # one-sided, as utest/uslopes
  p_max <- pt(abs(t_max), df, lower.tail = FALSE)
  ## utest-style (direction chosen by the sign of b2; trivial failure if the
  ## two slopes have the same sign)
  if (sl_min * sl_max > 0) {
    ut_stat <- NA_real_; ut_p <- NA_real_; trivial <- TRUE
  } else {
    ut_stat <- min(abs(t_min), abs(t_max)); ut_p <- max(p_min, p_max); trivial <- FALSE
  }
  ## U-specific signed statistic: H1 slope(xmin) < 0 and slope(xmax) > 0
  tU <- min(-t_min, t_max); pU <- pt(tU, df, lower.tail = FALSE)
  ## turning point and Fieller interval:
  ## {x : (b1 + 2 b2 x)^2 <= T^2 (s11 + 4 x s12 + 4 x^2 s22)} complement, i.e.
  ## A x^2 + B x + C = 0 with
  ##   A = 4 (b2^2 - T^2 s22), B = 4 (b1 b2 - T^2 s12), C = b1^2 - T^2 s11
  Tq <- qt(1 - (1 - level) / 2, df)
  A <- 4 * (b2^2 - Tq^2 * s22); B <- 4 * (b1 * b2 - Tq^2 * s12); C <- b1^2 - Tq^2 * s11
  disc <- B^2 - 4 * A * C
  if (disc > 0 && A > 0) {
    r <- sort(c((-B - sqrt(disc)) / (2 * A), (-B + sqrt(disc)) / (2 * A)))
    fieller <- list(type = "bounded", lower = r[1], upper = r[2])
  } else if (disc > 0 && A < 0) {
    r <- sort(c((-B - sqrt(disc)) / (2 * A), (-B + sqrt(disc)) / (2 * A)))
    fieller <- list(type = "union_of_two_rays", lower = r[1], upper = r[2],
                    note = "set is (-Inf, lower] U [upper, +Inf)")
  } else {
    fieller <- list(type = "whole_real_line", lower = NA_real_, upper = NA_real_)
  }
  ## Cross-check against Stata utest.ado v1.3 (theta = b1/b2, extreme = -theta/2)
  d <- (s12^2 - s11 * s22) * Tq^2 + b2^2 * s11 + b1^2 * s22 - 2 * b1 * b2 * s12
  if (d > 0 && (b2^2 - s22 * Tq^2) > 0) {
    th_l <- (-s12 * Tq^2 + b1 * b2 - Tq * sqrt(d)) / (b2^2 - s22 * Tq^2)
    th_h <- (-s12 * Tq^2 + b1 * b2 + Tq * sqrt(d)) / (b2^2 - s22 * Tq^2)
    stopifnot(fieller$type == "bounded",
              isTRUE(all.equal(c(-0.5 * th_h, -0.5 * th_l),
                               c(fieller$lower, fieller$upper), tolerance = 1e-12)))
  }
  list(xmin = xmin, xmax = xmax, df = df,
       slope_min = sl_min, se_min = se_min, t_min = t_min, p_min_one_sided = p_min,
       slope_max = sl_max, se_max = se_max, t_max = t_max, p_max_one_sided = p_max,
       utest_shape = if (b2 < 0) "inverse U" else "U",
       utest_trivial_failure = trivial, utest_statistic = ut_stat, utest_p = ut_p,
       U_signed_statistic = tU, U_signed_p = pU,
       turning_point = -b1 / (2 * b2),
       fieller_level = level, fieller_T = Tq,
       fieller_quadratic = list(A = A, B = B, C = C, discriminant = disc),
       fieller = fieller)
}

## ---- run -----------------------------------------------------------------------
out <- list()
for (nm in names(datasets)) {
  dat <- datasets[[nm]]
  xv <- dat$x; yv <- dat$y; n <- length(xv)

  ## (1b) author's code, verbatim
  res <- twolines(y ~ x, graph = 0, data = dat)

  ## (1c) transparent re-derivation of every step
  k <- min(10, length(unique(xv)))
  g <- gam(yv ~ s(xv, bs = "cr", k = k))          # default method = "GCV.Cp" in mgcv 1.8-41
  gp <- predict.gam(g, se.fit = TRUE)
  yhat_all <- as.numeric(gp$fit); yse_all <- as.numeric(gp$se.fit)
  q <- lm(yv ~ xv + I(xv^2))
  s0 <- unname(coef(q)[2] + 2 * coef(q)[3] * min(xv))
  shape <- if (s0 > 0) "inv-ushape" else "ushape"
  x10 <- unname(quantile(xv, .1)); x90 <- unname(quantile(xv, .9))   # type 7
  middle <- xv > x10 & xv < x90
  xm <- xv[middle]; yh <- yhat_all[middle]; ys <- yse_all[middle]
  if (shape == "inv-ushape") { ymost <- max(yh); flat <- (yh + ys) > ymost }
  if (shape == "ushape")     { ymost <- min(yh); flat <- (yh - ys) < ymost }
  xmost <- xm[match(ymost, yh)]
  xflat <- xm[flat]
  midflat <- median(xflat)
  rmid <- interrupted(xv, yv, midflat)
  z1 <- abs(rmid$slope1$HC3$stat); z2 <- abs(rmid$slope2$HC3$stat)
  qprob <- z2 / (z1 + z2)
  xc <- unname(quantile(xflat, qprob))                                # type 7
  fin <- interrupted(xv, yv, xc)
  b1 <- fin$slope1$estimate; b2 <- fin$slope2$estimate
  zz1 <- fin$slope1$HC3$stat; zz2 <- fin$slope2$HC3$stat
  pp1 <- fin$slope1$HC3$p_normal_two_sided; pp2 <- fin$slope2$HC3$p_normal_two_sided
  usig <- as.integer(b1 * b2 < 0 && pp1 < .05 && pp2 < .05)

  ## the re-derivation must agree with the author's code
  tol <- 1e-10
  stopifnot(isTRUE(all.equal(unname(res$xc), xc, tolerance = tol)),
            isTRUE(all.equal(res$midflat, midflat, tolerance = tol)),
            isTRUE(all.equal(res$midz1, z1, tolerance = tol)),
            isTRUE(all.equal(res$midz2, z2, tolerance = tol)),
            isTRUE(all.equal(res$b1, b1, tolerance = tol)),
            isTRUE(all.equal(res$b2, b2, tolerance = tol)),
            isTRUE(all.equal(res$z1, zz1, tolerance = tol)),
            isTRUE(all.equal(res$z2, zz2, tolerance = tol)),
            isTRUE(all.equal(res$p1, pp1, tolerance = tol)),
            isTRUE(all.equal(res$p2, pp2, tolerance = tol)),
            res$u.sig == usig, res$msg == "",
            isTRUE(all.equal(as.numeric(res$y.hat), yh, tolerance = tol)),
            res$x.most == xmost)
  ## SE used by the author's code = sandwich HC3 of the glm, z (normal) test
  stopifnot(isTRUE(all.equal(res$rob1[2, 2], fin$slope1$HC3$se, tolerance = tol)),
            isTRUE(all.equal(res$rob2[3, 2], fin$slope2$HC3$se, tolerance = tol)),
            colnames(res$rob1)[3] == "z value")

  ## (2) Lind-Mehlum
  bq <- coef(q)[2:3]; Vq <- vcov(q)[2:3, 2:3]
  lm_const <- lind_mehlum(bq, Vq, q$df.residual, min(xv), max(xv), 0.95)
  lm_const90 <- lind_mehlum(bq, Vq, q$df.residual, min(xv), max(xv), 0.90)
  Vq1 <- vcovHC(q, type = "HC1")[2:3, 2:3]          # = Stata ", robust"
  lm_hc1 <- lind_mehlum(bq, Vq1, q$df.residual, min(xv), max(xv), 0.95)

  out[[nm]] <- list(
    definition = datasets_def[[nm]], n = n, x = xv, y = yv,
    twolines = list(
      note = "Final result of Simonsohn's twolines() (app 0.52): HC3 SEs, z = b/SE, two-sided normal p.",
      b1 = b1, se1_HC3 = fin$slope1$HC3$se, z1 = zz1, p1 = pp1,
      b2 = b2, se2_HC3 = fin$slope2$HC3$se, z2 = zz2, p2 = pp2,
      u_sig = usig, xc = xc,
      hc_fallback_message = res$msg,
      intermediate = list(
        gam = list(formula = sprintf("y ~ s(x, bs='cr', k=%d)", k), method = g$method,
                   sp = unname(g$sp), edf_total = sum(g$edf), gcv_ubre = unname(g$gcv.ubre),
                   knots = as.numeric(g$smooth[[1]]$xp),
                   fitted = yhat_all, se_fit = yse_all),
        quadratic_for_direction = list(b0 = unname(coef(q)[1]), b1 = unname(coef(q)[2]),
                                       b2 = unname(coef(q)[3]), slope_at_min_x = s0,
                                       shape = shape),
        x10 = x10, x90 = x90, x_middle = xm,
        yhat_middle = yh, se_middle = ys, y_most = ymost, x_most = xmost,
        flat_mask_middle = flat, x_flat = xflat,
        midflat = midflat,
        midpoint_regression = list(
          xc = midflat,
          b1 = rmid$slope1$estimate, se1_HC3 = rmid$slope1$HC3$se, z1 = rmid$slope1$HC3$stat,
          b2 = rmid$slope2$estimate, se2_HC3 = rmid$slope2$HC3$se, z2 = rmid$slope2$HC3$stat,
          full = rmid),
        robin_hood_quantile = qprob
      ),
      final_interrupted_regression_all_se_types = fin,
      ## extra unit-test case: breakpoint exactly AT an observation (x_most), where
      ## line 1 (x <= xc) and line 2 (x >= xc) models differ
      interrupted_regression_at_data_point = interrupted(xv, yv, xmost)
    ),
    lind_mehlum = list(
      quadratic_fit = list(b0 = unname(coef(q)[1]), b1 = unname(bq[1]), b2 = unname(bq[2]),
                           vcov_b1_b2 = unname(Vq), se_b1 = sqrt(Vq[1, 1]), se_b2 = sqrt(Vq[2, 2]),
                           t_b2 = unname(bq[2] / sqrt(Vq[2, 2])),
                           p_b2_two_sided = 2 * pt(-abs(bq[2] / sqrt(Vq[2, 2])), q$df.residual),
                           sigma = summary(q)$sigma, df_residual = q$df.residual),
      conventional_se = lm_const,
      conventional_se_fieller90 = lm_const90,
      HC1_se = c(list(vcov_b1_b2 = unname(Vq1)), lm_hc1)
    )
  )
}

## ---- published check (Statalist/blog utest output) --------------------------------
## Only the extreme point can be reproduced from the printed coefficients
## (the covariance s12 is not printed): b1 = 1.205823, b2 = -.5845261,
## Stata "Extreme point: 1.031453".
pub_b1 <- 1.205823; pub_b2 <- -0.5845261
pub <- list(source = "https://bjdatatechsolution.blogspot.com/2021/03/u-test-for-inverted-u-shape.html (Stata `reg ..., robust` then `utest Vtraded Vtraded2, fieller level(90)`)",
            b1 = pub_b1, b2 = pub_b2, printed_extreme_point = 1.031453,
            computed_extreme_point = -pub_b1 / (2 * pub_b2))
stopifnot(abs(pub$computed_extreme_point - 1.031453) < 1e-6)  # inputs printed to 7 digits

meta <- list(R_version_string = R.version.string,
             packages = lapply(c(mgcv = "mgcv", sandwich = "sandwich", lmtest = "lmtest",
                                 jsonlite = "jsonlite", stringr = "stringr"),
                               function(p) as.character(packageVersion(p))),
             generated_by = "tests/data/reference/make_reference.R",
             twolines_source = "tests/data/reference/twolines_simonsohn.R (Simonsohn two-line app 0.52)")

json <- toJSON(list(meta = meta, datasets = out, published_utest_example = pub),
               auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null")
writeLines(json, "reference_values.json")
cat("wrote reference_values.json\n")

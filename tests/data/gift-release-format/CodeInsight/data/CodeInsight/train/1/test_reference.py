import numpy as np

def test(arr0):
    return arr0.T @ arr0

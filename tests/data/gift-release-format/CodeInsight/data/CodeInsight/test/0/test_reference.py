def test(df0, func0):
    return df0.apply(func0, axis=1)
